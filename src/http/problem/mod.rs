//! Error answers: `ApiError` and the one list of problem kinds (code, status, title).

pub mod error;
pub(crate) mod problem_kind;
