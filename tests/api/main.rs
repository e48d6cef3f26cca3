//! The integration tests, one binary (one link of libtorch): each module drives the real server, binary or
//! training pipeline from outside, as a user would, with the helpers in `common`. The training modules
//! need `--features train` (as `scripts/test` passes), which builds the `train` binary.

mod common;

mod api_keys;
mod client;
mod compare;
mod dashboard;
mod dedup;
mod demo_page;
mod embed_verify;
mod error_table;
mod errors;
mod fuzz_regressions;
mod hash_crosscheck;
mod inference_over_http;
mod json_logs;
mod lifecycle;
mod load;
mod metrics_promtool;
mod openapi;
mod overload;
mod pretrained_trunk;
mod product_compare;
mod router;
mod search;
mod slow_clients;
mod store_durability;
mod store_postgres;
mod subjects;
#[cfg(feature = "train")]
mod train_photos;
#[cfg(feature = "train")]
mod train_pipeline;
#[cfg(feature = "train")]
mod train_small_classes;
mod url_inputs;
