//! Where a run goes: a pure choice among the hosts (`local` and `[[hosts]]`), tested
//! without any. A host takes a ticket when it offers every label the ticket asks for, is
//! up (not drained, not down) and has a free slot; among those, one that already holds
//! the repository's objects comes first (its transfer is the smallest), then the one with
//! the most free slots (runs spread), then the order of the config (`local` first).

/// What placement knows of one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spot<'a> {
    pub name: &'a str,
    pub slots: usize,
    /// Its live runs.
    pub busy: usize,
    pub labels: &'a [String],
    /// Up: not drained by a person, not down after a failed check or a lost link.
    pub up: bool,
    /// It already holds the repository's objects (its mirror has been pushed to).
    pub has_objects: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placed {
    /// Start it there.
    On(String),
    /// A host could take it, but none can now.
    Wait,
    /// No host offers its labels: it can never run as the config stands.
    Never(String),
}

pub fn place(labels: &[String], spots: &[Spot<'_>]) -> Placed {
    let offers = |s: &Spot<'_>| labels.iter().all(|l| s.labels.contains(l));
    if !spots.iter().any(|s| offers(s) && s.slots > 0) {
        return Placed::Never(format!(
            "no host offers the labels {}: add them to a [[hosts]] entry's labels (or [factory] local_labels), or take them off the ticket",
            labels.join(", ")
        ));
    }
    spots
        .iter()
        .enumerate()
        .filter(|(_, s)| offers(s) && s.up && s.busy < s.slots)
        .min_by_key(|(i, s)| (!s.has_objects, std::cmp::Reverse(s.slots - s.busy), *i))
        .map(|(_, s)| Placed::On(s.name.to_string()))
        .unwrap_or(Placed::Wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spot<'a>(name: &'a str, slots: usize, busy: usize, labels: &'a [String]) -> Spot<'a> {
        Spot {
            name,
            slots,
            busy,
            labels,
            up: true,
            has_objects: true,
        }
    }

    #[test]
    fn labels_slots_state_and_objects_decide() {
        let none: Vec<String> = vec![];
        let gpu = vec!["gpu".to_string(), "linux".to_string()];
        let want_gpu = vec!["gpu".to_string()];
        // Local first while it has room; then the host with the most free slots.
        let mut spots = vec![
            spot("local", 2, 0, &none),
            spot("a", 2, 0, &gpu),
            spot("b", 4, 0, &none),
        ];
        assert_eq!(place(&[], &spots), Placed::On("b".into()));
        spots[2].busy = 3;
        assert_eq!(place(&[], &spots), Placed::On("local".into()));
        // Labels: only `a` offers a gpu.
        assert_eq!(place(&want_gpu, &spots), Placed::On("a".into()));
        spots[1].busy = 2;
        assert_eq!(place(&want_gpu, &spots), Placed::Wait);
        spots[1].busy = 0;
        spots[1].up = false;
        assert_eq!(place(&want_gpu, &spots), Placed::Wait);
        // Nobody offers `tpu`: never.
        let tpu = vec!["tpu".to_string()];
        assert!(matches!(place(&tpu, &spots), Placed::Never(w) if w.contains("tpu")));
        // A host holding the objects comes before one with more room.
        let spots = vec![
            Spot {
                has_objects: false,
                ..spot("fresh", 8, 0, &none)
            },
            spot("warm", 2, 1, &none),
        ];
        assert_eq!(place(&[], &spots), Placed::On("warm".into()));
        // Full everywhere: wait.
        let spots = vec![spot("local", 1, 1, &none), spot("a", 1, 1, &none)];
        assert_eq!(place(&[], &spots), Placed::Wait);
        // Local with no slots never takes a run.
        let spots = vec![spot("local", 0, 0, &none)];
        assert!(matches!(place(&[], &spots), Placed::Never(_)));
    }
}
