//! What a run cost. Claude Code reports its own figure; Codex, Gemini and the rest report
//! tokens only. Those tokens are priced here from a table of list prices per million tokens
//! (`[prices]` in shopfloor.toml adds models or overrides the built-in ones), so every run
//! has a cost, and it says when the cost was priced rather than reported.

use std::collections::BTreeMap;

pub use crate::config::prices::{Price, PricesConfig};
use crate::model::Usage;

/// List prices as published when this table was written (USD per million tokens). They
/// change: `[prices]` overrides any of them and adds models this list does not know.
const BUILTIN: &[(&str, Price)] = &[
    ("claude-opus-4", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-opus-4-1", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-sonnet-4", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-sonnet-4-5", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-haiku-4-5", p(1.0, 5.0, 0.1, 1.25)),
    ("claude-3-5-haiku", p(0.8, 4.0, 0.08, 1.0)),
    ("claude-3-7-sonnet", p(3.0, 15.0, 0.3, 3.75)),
    ("gpt-5", p(1.25, 10.0, 0.125, 0.0)),
    ("gpt-5-mini", p(0.25, 2.0, 0.025, 0.0)),
    ("gpt-5-nano", p(0.05, 0.4, 0.005, 0.0)),
    ("gpt-5-codex", p(1.25, 10.0, 0.125, 0.0)),
    ("gpt-4.1", p(2.0, 8.0, 0.5, 0.0)),
    ("gpt-4.1-mini", p(0.4, 1.6, 0.1, 0.0)),
    ("o3", p(2.0, 8.0, 0.5, 0.0)),
    ("o4-mini", p(1.1, 4.4, 0.275, 0.0)),
    ("gemini-2.5-pro", p(1.25, 10.0, 0.31, 0.0)),
    ("gemini-2.5-flash", p(0.3, 2.5, 0.075, 0.0)),
];

const fn p(input: f64, output: f64, cache_read: f64, cache_write: f64) -> Price {
    Price {
        input,
        output,
        cache_read,
        cache_write,
    }
}

/// The names CLIs accept for their current models.
const ALIASES: &[(&str, &str)] = &[
    ("opus", "claude-opus-4-1"),
    ("sonnet", "claude-sonnet-4-5"),
    ("haiku", "claude-haiku-4-5"),
];

/// The built-in prices with the workspace's `[prices]` over them.
#[derive(Clone, Debug)]
pub struct Prices {
    table: BTreeMap<String, Price>,
}

impl Prices {
    pub fn new(overrides: &PricesConfig) -> Prices {
        let mut table: BTreeMap<String, Price> =
            BUILTIN.iter().map(|(m, p)| (m.to_string(), *p)).collect();
        for (m, p) in overrides {
            table.insert(normalize(m), *p);
        }
        Prices { table }
    }

    /// The price of `model`: its own entry, or the entry it is a dated snapshot of
    /// (`claude-sonnet-4-5-20250929` is `claude-sonnet-4-5`), after aliases and a provider
    /// prefix (`anthropic/`, `openai/`) are taken off. Nothing else: `gpt-5.5` is not
    /// `gpt-5`, and an unknown model has no price rather than a wrong one.
    pub fn of(&self, model: &str) -> Option<Price> {
        let m = normalize(model);
        let m = ALIASES
            .iter()
            .find(|(a, _)| *a == m)
            .map_or(m.clone(), |(_, full)| full.to_string());
        if let Some(p) = self.table.get(&m) {
            return Some(*p);
        }
        self.table
            .iter()
            .filter(|(k, _)| m.strip_prefix(k.as_str()).is_some_and(is_dated))
            .max_by_key(|(k, _)| k.len())
            .map(|(_, p)| *p)
    }

    /// `usage` with a cost: the agent's own when it reported one, else its tokens priced for
    /// `model`. Unknown models (and usage with no tokens) stay without a cost.
    pub fn priced(&self, mut usage: Usage, model: Option<&str>) -> Usage {
        if usage.cost_usd.is_some() {
            return usage;
        }
        let tokens = usage.input_tokens
            + usage.output_tokens
            + usage.cache_read_tokens
            + usage.cache_write_tokens;
        if tokens == 0 {
            return usage;
        }
        if let Some(price) = model.and_then(|m| self.of(m)) {
            let per = |n: u64, usd: f64| n as f64 * usd / 1e6;
            usage.cost_usd = Some(
                per(usage.input_tokens, price.input)
                    + per(usage.output_tokens, price.output)
                    + per(usage.cache_read_tokens, price.cache_read)
                    + per(usage.cache_write_tokens, price.cache_write),
            );
            usage.cost_priced = true;
        }
        usage
    }
}

/// What follows a model's name in a dated snapshot's: `-20250929`, `-2025-08-07`,
/// `@20250929`, `-latest`.
fn is_dated(rest: &str) -> bool {
    let Some(r) = rest.strip_prefix(['-', '@']) else {
        return false;
    };
    r == "latest" || (r.len() >= 8 && r.chars().all(|c| c.is_ascii_digit() || c == '-'))
}

fn normalize(model: &str) -> String {
    let m = model.trim().to_ascii_lowercase();
    let m = m.rsplit_once('/').map_or(m.as_str(), |(_, name)| name);
    m.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            ..Usage::default()
        }
    }

    #[test]
    fn models_are_found_by_name_date_alias_and_provider() {
        let prices = Prices::new(&PricesConfig::new());
        let sonnet = prices.of("claude-sonnet-4-5").unwrap();
        assert_eq!(prices.of("claude-sonnet-4-5-20250929"), Some(sonnet));
        assert_eq!(prices.of("sonnet"), Some(sonnet));
        assert_eq!(prices.of("Anthropic/Claude-Sonnet-4-5"), Some(sonnet));
        assert_eq!(prices.of("gpt-5-mini").unwrap().input, 0.25);
        assert_eq!(prices.of("gpt-5").unwrap().input, 1.25);
        assert_eq!(prices.of("gpt-5-2025-08-07").unwrap().input, 1.25);
        assert_eq!(prices.of("gpt-5-mini-2025-08-07").unwrap().input, 0.25);
        // A longer name is not taken for a shorter model's by accident.
        assert_eq!(prices.of("gpt-5.5"), None, "unknown until [prices] says");
        assert_eq!(prices.of("my-local-model"), None);
    }

    #[test]
    fn reported_costs_stand_and_tokens_are_priced_otherwise() {
        let mut table = PricesConfig::new();
        table.insert(
            "gpt-5.5".into(),
            Price {
                input: 5.0,
                output: 40.0,
                cache_read: 0.5,
                cache_write: 0.0,
            },
        );
        let prices = Prices::new(&table);
        let reported = Usage {
            cost_usd: Some(0.5),
            ..usage(1_000_000, 0)
        };
        assert_eq!(prices.priced(reported.clone(), Some("gpt-5.5")), reported);
        let priced = prices.priced(
            Usage {
                cache_read_tokens: 1_000_000,
                ..usage(2_000_000, 100_000)
            },
            Some("gpt-5.5"),
        );
        assert!((priced.cost_usd.unwrap() - (10.0 + 4.0 + 0.5)).abs() < 1e-9);
        assert!(priced.cost_priced);
        assert_eq!(prices.priced(usage(10, 10), Some("nobody")).cost_usd, None);
        assert_eq!(prices.priced(usage(0, 0), Some("gpt-5.5")).cost_usd, None);
    }
}
