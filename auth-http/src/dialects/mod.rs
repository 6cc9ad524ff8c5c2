//! Dialects beyond [`Canonical`]: the wire contracts of the services our users
//! migrate from (`../shared/seeds/`), over the same flows. Each is selected by name with
//! [`by_name`].

use std::sync::Arc;

use crate::dialect::{Canonical, Dialect};

mod plain;

pub use plain::Plain;

/// The names [`by_name`] knows.
pub const NAMES: &[&str] = &["canonical", "plain"];

/// The dialect called `name` (`canonical`, `plain`); `None` for another name.
#[must_use]
pub fn by_name(name: &str) -> Option<Arc<dyn Dialect>> {
    match name {
        "canonical" => Some(Arc::new(Canonical)),
        "plain" => Some(Arc::new(Plain)),
        _ => None,
    }
}
