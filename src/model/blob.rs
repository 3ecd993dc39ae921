//! Content hashes and the text a step carries: inline, or a reference to a stored blob.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A blake3 content hash, shown and serialized as 64 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHash(pub [u8; 32]);

impl BlobHash {
    pub fn of(bytes: &[u8]) -> Self {
        BlobHash(*blake3::hash(bytes).as_bytes())
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({})", self.short())
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for BlobHash {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|e| format!("blob hash `{s}` is not hex: {e}"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("blob hash `{s}` must be 64 hex characters"))?;
        Ok(BlobHash(arr))
    }
}

impl Serialize for BlobHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for BlobHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A reference to content kept in the store's blob table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub blob: BlobHash,
    /// Length of the content in bytes.
    pub len: u64,
    /// The first characters of the content (lossy UTF-8), so lists never load the blob.
    pub preview: String,
}

/// Text a step carries: inline when small, a blob reference when large. Importers and
/// agent adapters always produce `Text`; the store moves large text into blobs on write
/// and `trace export` brings it back inline, so the interchange format is always whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Payload {
    Text(String),
    Blob(BlobRef),
}

impl Default for Payload {
    fn default() -> Self {
        Payload::Text(String::new())
    }
}

impl From<String> for Payload {
    fn from(s: String) -> Self {
        Payload::Text(s)
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Payload::Text(s.to_string())
    }
}

impl Payload {
    /// The inline text, or the blob's preview.
    pub fn preview(&self) -> &str {
        match self {
            Payload::Text(s) => s,
            Payload::Blob(b) => &b.preview,
        }
    }
    pub fn len(&self) -> u64 {
        match self {
            Payload::Text(s) => s.len() as u64,
            Payload::Blob(b) => b.len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn is_blob(&self) -> bool {
        matches!(self, Payload::Blob(_))
    }
}
