//! Dialects beyond [`Canonical`]: the wire contracts of the services our users
//! migrate from (`../shared/seeds/`), over the same flows. Each is selected by name with
//! [`by_name`].

use std::sync::Arc;

use crate::dialect::{Canonical, Dialect};

mod code_data;
mod plain;
mod res_err;
mod success;

pub use code_data::{CodeData, CodeDataUserDefaults};
pub use plain::Plain;
pub use res_err::ResErr;
pub use success::Success;

/// The names [`by_name`] knows.
pub const NAMES: &[&str] = &["canonical", "code-data", "plain", "res-err", "success"];

/// The dialect called `name` (`canonical`, `code-data`, `plain`, `res-err`, `success`), with its
/// default settings;
/// `None` for another name.
#[must_use]
pub fn by_name(name: &str) -> Option<Arc<dyn Dialect>> {
    match name {
        "canonical" => Some(Arc::new(Canonical)),
        "code-data" => Some(Arc::new(CodeData::default())),
        "plain" => Some(Arc::new(Plain)),
        "res-err" => Some(Arc::new(ResErr)),
        "success" => Some(Arc::new(Success)),
        _ => None,
    }
}
