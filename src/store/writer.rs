//! The store's single writer: one thread that drains every write waiting for it into one
//! transaction, commits it with `Durability::Immediate`, and only then answers each caller.
//! Concurrent producers (many agents appending steps) so share one fsync instead of one each.

use std::any::Any;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use redb::{Database, Durability, WriteTransaction};

use super::{Result, StoreError};

type Answer = Result<Box<dyn Any + Send>>;
type Job = Box<dyn FnMut(&WriteTransaction) -> Answer + Send>;

struct Request {
    job: Job,
    reply: SyncSender<Answer>,
}

/// At most this many writes share one transaction, so one huge batch cannot starve others.
const MAX_BATCH: usize = 256;

#[derive(Clone)]
pub struct Writer {
    tx: Sender<Request>,
}

impl Writer {
    pub fn start(db: Arc<Database>) -> Writer {
        let (tx, rx) = channel::<Request>();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(db, rx))
            .expect("spawn the store writer thread");
        Writer { tx }
    }

    pub fn submit<R, F>(&self, mut f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<R> + Send + 'static,
    {
        let (reply, answer) = sync_channel(1);
        let job: Job = Box::new(move |tx| f(tx).map(|r| Box::new(r) as Box<dyn Any + Send>));
        self.tx
            .send(Request { job, reply })
            .map_err(|_| StoreError::WriterGone)?;
        let value = answer.recv().map_err(|_| StoreError::WriterGone)??;
        Ok(*value.downcast::<R>().expect("writer answers with the job's own type"))
    }
}

fn run(db: Arc<Database>, rx: Receiver<Request>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        match commit_together(&db, &mut batch) {
            Ok(answers) => {
                for (req, ans) in batch.into_iter().zip(answers) {
                    let _ = req.reply.send(Ok(ans));
                }
            }
            Err(e) if batch.len() == 1 => {
                let _ = batch.pop().expect("one request").reply.send(Err(e));
            }
            // One write failed (or the commit did): retry each alone so one bad write
            // cannot fail the others, and every caller gets its own answer.
            Err(_) => {
                for mut req in batch {
                    let ans = commit_together(&db, std::slice::from_mut(&mut req))
                        .map(|mut v| v.pop().expect("one answer per job"));
                    let _ = req.reply.send(ans);
                }
            }
        }
    }
}

fn commit_together(db: &Database, batch: &mut [Request]) -> Result<Vec<Box<dyn Any + Send>>> {
    let mut tx = db.begin_write()?;
    tx.set_durability(Durability::Immediate)
        .map_err(|e| StoreError::Db(e.into()))?;
    let mut answers = Vec::with_capacity(batch.len());
    for req in batch.iter_mut() {
        match (req.job)(&tx) {
            Ok(a) => answers.push(a),
            Err(e) => {
                let _ = tx.abort();
                return Err(e);
            }
        }
    }
    tx.commit()?;
    Ok(answers)
}
