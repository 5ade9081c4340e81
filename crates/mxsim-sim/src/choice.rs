//! The run's only entropy: choice points, drawn from a seeded ChaCha8 stream or forced by an
//! explorer.
//!
//! A permutation of `n` items is a Fisher–Yates shuffle, that is `n - 1` choice points of
//! arities `n, n-1, …, 2`. Drawing each point uniformly gives a uniform permutation; walking
//! every combination of choices gives every permutation exactly once. So the same mechanism
//! serves `--seed N` and "every equal-preference order".

use rand::rngs::ChaCha8Rng;
use rand::{Rng, SeedableRng};

/// The ChaCha stream used for choice points. Other consumers of randomness, when they come
/// (network jitter, say), get their own stream so that adding one shifts no other.
const STREAM_CHOICES: u64 = 1;

/// Where choices come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choices {
    /// Uniform draws from the run's seed.
    Seed(u64),
    /// These values first, then the first option (0) at every later point: one leaf of the
    /// exhaustive walk. A value past a point's options takes its last option.
    Forced(Vec<u64>),
}

/// Hands out choice values and remembers what it handed out.
pub struct Chooser {
    rng: Option<ChaCha8Rng>,
    forced: Vec<u64>,
    /// The value taken at each point, in order.
    pub taken: Vec<u64>,
    /// The arity of each point, in order.
    pub arities: Vec<u64>,
}

impl Chooser {
    /// A chooser for one run.
    pub fn new(choices: &Choices) -> Chooser {
        match choices {
            Choices::Seed(seed) => {
                let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                rng.set_stream(STREAM_CHOICES);
                Chooser {
                    rng: Some(rng),
                    forced: Vec::new(),
                    taken: Vec::new(),
                    arities: Vec::new(),
                }
            }
            Choices::Forced(values) => Chooser {
                rng: None,
                forced: values.clone(),
                taken: Vec::new(),
                arities: Vec::new(),
            },
        }
    }

    /// A value in `0..arity`.
    pub fn choose(&mut self, arity: u64) -> u64 {
        assert!(arity >= 1, "a choice point needs at least one option");
        let index = self.taken.len();
        let value = match (&mut self.rng, self.forced.get(index)) {
            (Some(rng), _) => bounded(rng, arity),
            // A forced value past the options (from `run --order`, typed by hand) takes the last
            // option; the run's label then shows the order actually taken.
            (None, Some(value)) => (*value).min(arity - 1),
            (None, None) => 0,
        };
        self.taken.push(value);
        self.arities.push(arity);
        value
    }

    /// Shuffles `items` in place (Fisher–Yates, one choice point per step).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        let n = items.len();
        for i in 0..n.saturating_sub(1) {
            let offset = self.choose((n - i) as u64) as usize;
            items.swap(i, i + offset);
        }
    }
}

/// A uniform value in `0..bound` from 64-bit draws, by rejection (no modulo bias). Written here
/// rather than taken from rand's distributions, whose output may change between versions.
fn bounded(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    if bound == 1 {
        return 0;
    }
    let zone = u64::MAX - (u64::MAX % bound) - 1;
    loop {
        let draw = rng.next_u64();
        if draw <= zone {
            return draw % bound;
        }
    }
}

/// The next leaf after `taken` (with `arities`) in lexicographic order, or `None` when the
/// walk is complete.
pub fn next_leaf(taken: &[u64], arities: &[u64]) -> Option<Vec<u64>> {
    let last = (0..taken.len())
        .rev()
        .find(|&index| taken[index] + 1 < arities[index])?;
    let mut next = taken[..last].to_vec();
    next.push(taken[last] + 1);
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustive_walk_gives_every_permutation_once() {
        let mut seen = Vec::new();
        let mut forced = Some(Vec::new());
        while let Some(values) = forced {
            let mut chooser = Chooser::new(&Choices::Forced(values));
            let mut items = ['a', 'b', 'c', 'd'];
            chooser.shuffle(&mut items);
            seen.push(items.iter().collect::<String>());
            forced = next_leaf(&chooser.taken, &chooser.arities);
        }
        assert_eq!(seen.len(), 24);
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 24);
        assert_eq!(seen[0], "abcd");
    }

    #[test]
    fn seeded_draws_are_reproducible_and_cover_every_option() {
        let draw = |seed| {
            let mut chooser = Chooser::new(&Choices::Seed(seed));
            (0..8).map(|_| chooser.choose(3)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        let all: Vec<u64> = (0..20).flat_map(draw).collect();
        for value in 0..3 {
            assert!(all.contains(&value));
        }
    }
}
