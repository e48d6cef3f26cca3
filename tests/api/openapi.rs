//! The committed `openapi/openapi.json` is exactly what `simverify openapi` prints, and documents every
//! error answer of every image endpoint.

use simverify::http::openapi_spec;

const REGENERATE: &str = "source scripts/env.sh && cargo run --bin simverify -- openapi > openapi/openapi.json";

#[test]
fn the_committed_spec_matches_the_code() {
    let generated = format!("{}\n", openapi_spec().to_pretty_json().expect("the spec serialises"));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");

    let committed = std::fs::read_to_string(&path).unwrap_or_default();

    assert!(
        committed == generated,
        "openapi/openapi.json is out of date with the code; regenerate it with:\n\n    {REGENERATE}\n"
    );
}

#[test]
fn every_image_endpoint_documents_both_input_forms_and_every_error_status() {
    let spec: serde_json::Value = serde_json::to_value(openapi_spec()).unwrap();

    for path in ["/compare", "/embed", "/verify"] {
        let operation = &spec["paths"][path]["post"];
        let content = &operation["requestBody"]["content"];
        assert!(content["application/json"].is_object(), "{path}: JSON body");
        assert!(content["multipart/form-data"].is_object(), "{path}: multipart body");
        for status in ["200", "400", "401", "404", "413", "415", "422", "500", "503", "504"] {
            let response = &operation["responses"][status];
            assert!(response.is_object(), "{path} documents {status}");
            if status != "200" {
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
                    "{path} {status}"
                );
            }
        }
        assert!(
            operation["responses"]["503"]["headers"]["Retry-After"].is_object(),
            "{path}: Retry-After"
        );
        assert_eq!(
            operation["security"].as_array().map(Vec::len),
            Some(2),
            "{path}: API keys"
        );
    }
    for path in ["/health", "/ready"] {
        let operation = &spec["paths"][path]["get"];
        assert!(operation["security"].is_null(), "{path} needs no key");
        assert!(operation["responses"]["401"].is_null(), "{path} never answers 401");
    }
    let image = &spec["components"]["schemas"]["ImageData"];
    assert_eq!(
        image["oneOf"].as_array().map(Vec::len),
        Some(2),
        "base64 or url: {image}"
    );
}
