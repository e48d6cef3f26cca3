//! A little of every kind of traffic, so that a scrape shows the series requests create: answers on
//! each decision route (compare, verify, search) and a refusal, with nothing enrolled: every series a
//! dashboard reads must exist before the first enrolment.

use serde_json::json;

use super::{b64, digit, Server};

impl Server {
    /// Sends one request of each kind and returns the `/metrics` text scraped after them.
    pub async fn scrape_after_traffic(&self) -> String {
        self.compare(&digit(3, 0), &digit(3, 1)).await.ok();
        self.compare(&digit(3, 0), &digit(8, 0)).await.ok();
        self.post_json(
            "/verify",
            &json!({ "candidate": b64(&digit(5, 0)), "references": [b64(&digit(5, 1))] }),
        )
        .await
        .ok();
        self.post_json("/search", &json!({ "image": b64(&digit(4, 1)), "k": 1 }))
            .await
            .ok();
        // A refusal: a body that is not an image.
        let refused = self.compare(b"not an image", &digit(1, 0)).await;
        assert!(refused.status.is_client_error(), "{refused:?}");
        let metrics = self.get("/metrics").await;
        assert!(metrics.status.is_success(), "{metrics:?}");
        metrics.text
    }
}

/// The sample names in a text exposition (`name{labels} value` or `name value`), comments skipped.
pub fn exported_names(exposition: &str) -> std::collections::BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}
