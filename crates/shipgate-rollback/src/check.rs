//! Whether an image exists: the seam the resolver checks candidates through.

use async_trait::async_trait;
use shipgate_core::ImageRef;

use crate::RollbackError;

/// What the registry said about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existence {
    /// The manifest exists; its digest when the registry sent one.
    Exists(Option<String>),
    /// 404: no such tag or manifest (never pushed, or deleted).
    Missing,
}

/// Checks images.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ImageCheck: Send + Sync {
    /// Whether `image` exists; an error says why the registry could not tell.
    async fn exists(&self, image: &ImageRef) -> Result<Existence, RollbackError>;
}
