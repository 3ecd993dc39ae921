//! The code-aware tokenizer: agents and people write about `parseConfigFile`,
//! `src/store/writer.rs` and `Store::open` as often as about plain words, and a search for
//! "config" or "writer" must find them. Every identifier-like chunk is emitted whole
//! (lowercased) and then split into its segments and words, so both the exact identifier
//! and any of its parts match.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Name under which the tokenizer is registered on the index.
pub const CODE_TOKENIZER: &str = "code";

/// Longest term kept, in bytes: longer chunks (base64, minified code, hashes of hashes)
/// only bloat the dictionary; their parts are still indexed when they have any.
const MAX_TERM_BYTES: usize = 80;

#[derive(Clone, Default)]
pub struct CodeTokenizer;

/// Characters that join the words of one identifier-like chunk: `a_b`, `a-b`, `a/b`,
/// `a.b`, `a::b`, `a\b`.
fn is_joiner(c: char) -> bool {
    matches!(c, '_' | '-' | '/' | '\\' | '.' | ':')
}

/// Characters that separate segments of a chunk (paths, modules), as opposed to the
/// words inside one name (`_`, `-`, case changes).
fn is_segment_sep(c: char) -> bool {
    matches!(c, '/' | '\\' | '.' | ':')
}

/// Split one name (no joiners except `_`/`-`) into lowercase words at `_`, `-`, case
/// changes (`parseHTTPRequest` -> parse, http, request) and letter/digit boundaries are
/// kept together (`utf8`, `v2`), because splitting those hurts more than it helps.
fn split_words(name: &str, out: &mut Vec<String>) {
    for part in name.split(['_', '-']) {
        let chars: Vec<char> = part.chars().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (prev, cur) = (chars[i - 1], chars[i]);
            let next_lower = chars.get(i + 1).is_some_and(|c| c.is_lowercase());
            // fooBar: boundary before B. HTTPServer: boundary before S (upper followed by lower).
            let boundary = (prev.is_lowercase() && cur.is_uppercase())
                || (prev.is_uppercase() && cur.is_uppercase() && next_lower)
                || (prev.is_numeric() && cur.is_uppercase());
            if boundary {
                push_lower(&chars[start..i], out);
                start = i;
            }
        }
        push_lower(&chars[start..], out);
    }
}

fn push_lower(chars: &[char], out: &mut Vec<String>) {
    if chars.is_empty() {
        return;
    }
    let word: String = chars.iter().collect::<String>().to_lowercase();
    if !word.is_empty() && word.len() <= MAX_TERM_BYTES {
        out.push(word);
    }
}

/// All terms of a text, in order: for each chunk its whole form, then its segments (when
/// a segment has several words), then its words; duplicates within a chunk are dropped.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_chunk(text, |chunk| chunk_terms(chunk, &mut out));
    out
}

/// Terms of one chunk, appended to `out`.
fn chunk_terms(chunk: &str, out: &mut Vec<String>) {
    let start = out.len();
    let push = |t: String, out: &mut Vec<String>| {
        if !t.is_empty() && t.len() <= MAX_TERM_BYTES && !out[start..].contains(&t) {
            out.push(t);
        }
    };
    let whole = chunk.to_lowercase();
    let mut words = Vec::new();
    let segments: Vec<&str> = chunk
        .split(is_segment_sep)
        .filter(|s| s.chars().any(char::is_alphanumeric))
        .collect();
    push(whole, out);
    for seg in &segments {
        let before = words.len();
        split_words(seg, &mut words);
        if words.len() - before > 1 && segments.len() > 1 {
            push(seg.to_lowercase(), out);
        }
    }
    for w in words {
        // Plain words also add their English stem (`painted` -> `paint`), so inflections
        // meet; the exact form is kept too, so an exact match still scores higher.
        let stem = stem(&w);
        push(w, out);
        if let Some(s) = stem {
            push(s, out);
        }
    }
}

/// The stem of an alphabetic word when it differs from the word.
fn stem(word: &str) -> Option<String> {
    if word.len() < 4 || !word.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let stemmer = frostem::Stemmer::new(frostem::Algorithm::English);
    let s = stemmer.stem(word);
    (s != word && !s.is_empty()).then(|| s.into_owned())
}

/// Call `f` with each chunk: a maximal run of alphanumerics and joiners, trimmed of
/// joiners at both ends (so "the bug." gives `bug`, "/etc/hosts" gives `etc/hosts`).
fn for_each_chunk(text: &str, mut f: impl FnMut(&str)) {
    let mut start: Option<usize> = None;
    let mut emit = |s: &str| {
        let t = s.trim_matches(is_joiner);
        if t.chars().any(char::is_alphanumeric) {
            f(t);
        }
    };
    for (i, c) in text.char_indices() {
        let inside = c.is_alphanumeric() || is_joiner(c);
        match (inside, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                emit(&text[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        emit(&text[s..]);
    }
}

/// The token stream tantivy consumes: terms are computed eagerly per field value, which
/// keeps the splitting logic in one plain function that the tests exercise directly.
pub struct CodeTokenStream {
    tokens: Vec<Token>,
    index: usize,
}

impl Tokenizer for CodeTokenizer {
    type TokenStream<'a> = CodeTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> CodeTokenStream {
        let tokens = tokenize(text)
            .into_iter()
            .enumerate()
            .map(|(position, text)| Token {
                // Offsets are not used (no highlighting); positions keep term order.
                offset_from: 0,
                offset_to: 0,
                position,
                text,
                position_length: 1,
            })
            .collect();
        CodeTokenStream { tokens, index: 0 }
    }
}

impl TokenStream for CodeTokenStream {
    fn advance(&mut self) -> bool {
        if self.index < self.tokens.len() {
            self.index += 1;
            true
        } else {
            false
        }
    }
    fn token(&self) -> &Token {
        &self.tokens[self.index - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.index - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(text: &str, want: &[&str]) {
        let got = tokenize(text);
        for w in want {
            assert!(
                got.iter().any(|t| t == w),
                "{text:?} -> {got:?} lacks {w:?}"
            );
        }
    }

    #[test]
    fn camel_and_pascal_case_keep_whole_and_parts() {
        has(
            "parseConfigFile",
            &["parseconfigfile", "parse", "config", "file"],
        );
        has(
            "HTTPServerError",
            &["httpservererror", "http", "server", "error"],
        );
        has("IndexWriter", &["indexwriter", "index", "writer"]);
    }

    #[test]
    fn snake_and_kebab_case() {
        has(
            "max_term_bytes",
            &["max_term_bytes", "max", "term", "bytes"],
        );
        has(
            "run-tests-fast",
            &["run-tests-fast", "run", "tests", "fast"],
        );
    }

    #[test]
    fn paths_and_module_paths() {
        has(
            "see src/store/writer_thread.rs now",
            &[
                "src/store/writer_thread.rs",
                "src",
                "store",
                "writer_thread",
                "writer",
                "thread",
                "rs",
                "see",
                "now",
            ],
        );
        has("Foo::bar", &["foo::bar", "foo", "bar"]);
        has("/etc/hosts", &["etc/hosts", "etc", "hosts"]);
    }

    #[test]
    fn plain_words_are_lowercased_and_trailing_punctuation_dropped() {
        assert_eq!(
            tokenize("Fixed the Bug."),
            vec!["fixed", "fix", "the", "bug"]
        );
        assert_eq!(tokenize("utf8 v2"), vec!["utf8", "v2"]);
    }

    #[test]
    fn english_words_add_their_stem_and_keep_the_word() {
        assert_eq!(tokenize("painting"), vec!["painting", "paint"]);
        has("runTests", &["runtests", "run", "tests", "test"]);
        // Short words, numbers and non-ASCII words are left alone.
        assert_eq!(tokenize("was v2 café"), vec!["was", "v2", "café"]);
    }

    #[test]
    fn hostile_text_never_panics_and_drops_punctuation() {
        assert_eq!(tokenize("fn(x) -> \"y\""), vec!["fn", "x", "y"]);
        assert_eq!(tokenize("a AND ("), vec!["a", "and"]);
        assert!(tokenize("::// -- .. ((").is_empty());
        assert!(tokenize("").is_empty());
        has("naïve Ünïcode café", &["naïve", "ünïcode", "café"]);
        let long = "x".repeat(500);
        assert!(tokenize(&long).is_empty());
    }
}
