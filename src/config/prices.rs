//! `[prices."MODEL"]`: USD per million tokens, for agents that report no cost.

use std::collections::BTreeMap;

use serde::Deserialize;

/// US dollars per million tokens of each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Cached input read back (Anthropic's cache reads, OpenAI's cached input).
    #[serde(default)]
    pub cache_read: f64,
    /// Input written to the cache (Anthropic's cache creation).
    #[serde(default)]
    pub cache_write: f64,
}

/// `[prices]`: model name -> price, e.g. `[prices."gpt-5.5"] input = 5.0, output = 40.0`.
pub type PricesConfig = BTreeMap<String, Price>;

/// Check a `[prices]` table: finite, non-negative prices. The error names the model.
pub fn validate(prices: &PricesConfig) -> Result<(), String> {
    for (model, p) in prices {
        for (what, v) in [
            ("input", p.input),
            ("output", p.output),
            ("cache_read", p.cache_read),
            ("cache_write", p.cache_write),
        ] {
            if !(v.is_finite() && (0.0..=10_000.0).contains(&v)) {
                return Err(format!(
                    "[prices.\"{model}\"] {what} = {v}: a price is US dollars per million tokens, from 0 to 10000"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_prices_are_refused() {
        let mut table = PricesConfig::new();
        table.insert(
            "x".into(),
            Price {
                input: f64::NAN,
                ..Price::default()
            },
        );
        assert!(
            validate(&table)
                .unwrap_err()
                .contains("[prices.\"x\"] input")
        );
        table.insert(
            "x".into(),
            Price {
                output: -1.0,
                ..Price::default()
            },
        );
        assert!(validate(&table).is_err());
    }
}
