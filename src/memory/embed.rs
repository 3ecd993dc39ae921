//! Text to vectors. The built-in embedder is a static (model2vec) model distilled from
//! all-MiniLM-L6-v2 and compiled into the binary, so `shopfloor up` needs no download and
//! no GPU: encoding is a tokenizer pass and a mean of int8 rows, tens of microseconds a
//! sentence. Users can point at their own model2vec directory instead.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use model2vec_rs::model::StaticModel;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(
        "cannot read {path}: {source}; a model directory needs tokenizer.json, model.safetensors and config.json"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the embedding model {what} is not a usable model2vec model: {detail}")]
    Model { what: String, detail: String },
}

/// Anything that turns text into fixed-size vectors; vectors of one embedder are
/// comparable with each other by dot product (they are L2-normalised).
pub trait Embedder: Send + Sync {
    fn dim(&self) -> usize;
    fn embed(&self, text: &str) -> Vec<f32>;
    fn embed_batch(&self, texts: &[String]) -> Vec<Vec<f32>> {
        texts.iter().map(|t| self.embed(t)).collect()
    }
}

const BUILTIN_TOKENIZER: &[u8] = include_bytes!("../../assets/model/tokenizer.json");
const BUILTIN_MODEL: &[u8] = include_bytes!("../../assets/model/model.safetensors");
const BUILTIN_CONFIG: &[u8] = include_bytes!("../../assets/model/config.json");

/// A model2vec static model.
pub struct StaticEmbedder {
    model: StaticModel,
}

impl StaticEmbedder {
    /// The model compiled into the binary, parsed once per process on first use (parsing
    /// takes tens of milliseconds; commands that never recall never pay it).
    pub fn builtin() -> Arc<StaticEmbedder> {
        static MODEL: OnceLock<Arc<StaticEmbedder>> = OnceLock::new();
        MODEL
            .get_or_init(|| {
                let model =
                    StaticModel::from_bytes(BUILTIN_TOKENIZER, BUILTIN_MODEL, BUILTIN_CONFIG, None)
                        .expect("the built-in model is checked by the test suite");
                Arc::new(StaticEmbedder { model })
            })
            .clone()
    }

    /// A user's own model2vec directory (tokenizer.json, model.safetensors, config.json).
    pub fn from_dir(dir: &Path) -> Result<StaticEmbedder, EmbedError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| EmbedError::Read { path, source })
        };
        let (tok, model, config) = (
            read("tokenizer.json")?,
            read("model.safetensors")?,
            read("config.json")?,
        );
        let model =
            StaticModel::from_bytes(tok, model, config, None).map_err(|e| EmbedError::Model {
                what: format!("in {}", dir.display()),
                detail: format!("{e:#}"),
            })?;
        Ok(StaticEmbedder { model })
    }
}

impl Embedder for StaticEmbedder {
    fn dim(&self) -> usize {
        self.model.dim()
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        normalized(self.model.encode_single(text))
    }

    fn embed_batch(&self, texts: &[String]) -> Vec<Vec<f32>> {
        self.model
            .encode(texts)
            .into_iter()
            .map(normalized)
            .collect()
    }
}

/// L2-normalise (the model already does, but a user's model may not), and turn NaN or an
/// empty text's zero vector into zeros that match nothing rather than everything.
fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm.is_finite() && norm > 1e-12 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else {
        v.iter_mut().for_each(|x| *x = 0.0);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn builtin_model_loads_and_puts_paraphrases_closer() {
        let e = StaticEmbedder::builtin();
        assert_eq!(e.dim(), 256);
        let a = e.embed("the database connection keeps timing out");
        let b = e.embed("db connections time out often");
        let c = e.embed("she painted a sunset over the lake");
        assert!((dot(&a, &a) - 1.0).abs() < 1e-3);
        assert!(
            dot(&a, &b) > dot(&a, &c),
            "{} vs {}",
            dot(&a, &b),
            dot(&a, &c)
        );
        let batch = e.embed_batch(&["x".to_string(), "".to_string()]);
        assert_eq!(batch.len(), 2);
        assert!(batch[1].iter().all(|x| x.is_finite()));
    }

    #[test]
    fn encode_time_is_small() {
        let e = StaticEmbedder::builtin();
        let text = "Run the migration before the store opens; the writer thread batches commits.";
        let t = std::time::Instant::now();
        for _ in 0..200 {
            std::hint::black_box(e.embed(text));
        }
        let per = t.elapsed() / 200;
        eprintln!("embed: {per:?} per sentence");
        // Generous for unoptimised test builds; release is ~100x under this.
        assert!(per < std::time::Duration::from_millis(20), "{per:?}");
    }

    #[test]
    fn from_dir_reports_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = StaticEmbedder::from_dir(dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("tokenizer.json"), "{err}");
    }
}
