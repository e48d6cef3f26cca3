//! Error answers: `ApiError` and the one list of problem kinds (code, status, title).

pub(crate) mod error;
pub(crate) mod problem_kind;
