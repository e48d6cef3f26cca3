//! Tightens the generated OpenAPI document where utoipa's attributes cannot say it (identifiers given as
//! inline path parameters, "exactly one of two fields", no unknown multipart parts), and specialises the
//! served copy to the running server's settings, so that every schema-valid request is one it accepts.

use serde_json::{json, Value};

macro_rules! subject_id_forms {
    () => {
        r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,126}|\.\.[A-Za-z0-9._-]{1,126}"
    };
}

/// A subject id (see `store::check_id`): 1 to 128 of `[A-Za-z0-9._-]`, but not `.` or `..`. Spelt without
/// look-ahead, which generators (schemathesis, hypothesis) cannot invert.
pub(crate) const SUBJECT_ID_PATTERN: &str = concat!("^(?:", subject_id_forms!(), ")$");
/// A listing's cursor: a subject id, or empty for the first page.
const CURSOR_PATTERN: &str = concat!("^(?:|", subject_id_forms!(), ")$");
/// An enrolled image's id: 32 lowercase hex digits (see `store::ImageId`).
pub(crate) const IMAGE_ID_PATTERN: &str = "^[0-9a-f]{32}$";

fn subject_id() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 128, "pattern": SUBJECT_ID_PATTERN})
}

/// The rules every copy of the document carries.
pub(crate) fn tighten(api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    edit(api, |doc| {
        for (_, item) in object_entries(&mut doc["paths"]) {
            for (_, operation) in object_entries(item) {
                let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) else {
                    continue;
                };
                for parameter in parameters {
                    // Subject ids travel as `{id}` and as the `cursor` of a listing (the last id of a page).
                    let schema = match parameter["name"].as_str() {
                        Some("id") => subject_id(),
                        Some("cursor") => json!({"type": "string", "maxLength": 128, "pattern": CURSOR_PATTERN}),
                        Some("image_id") => json!({"type": "string", "pattern": IMAGE_ID_PATTERN}),
                        _ => continue,
                    };
                    parameter["schema"] = schema;
                }
            }
        }
        let schemas = &mut doc["components"]["schemas"];
        // A multipart part the form does not name is refused, as an unknown JSON field is.
        for (name, schema) in object_entries(schemas) {
            if name.ends_with("Form") {
                schema["additionalProperties"] = json!(false);
            }
            // A threshold sent is a finite f32: a larger number would be read as infinity and refused.
            // (Requests only: an answer's f32, printed shortest, may round above the exact maximum.)
            let request = name.ends_with("Request") || name.ends_with("Form");
            if let Some(threshold) = schema
                .get_mut("properties")
                .and_then(|p| p.get_mut("threshold"))
                .filter(|_| request)
            {
                threshold["maximum"] = json!(f32::MAX);
            }
        }
        for request in ["SearchRequest", "DuplicatesRequest"] {
            let filter = &mut schemas[request]["properties"]["subjects"];
            filter["minItems"] = json!(1);
            filter["maxItems"] = json!(crate::http::routes::search::MAX_FILTER_SUBJECTS);
            filter["items"] = subject_id();
        }
        schemas["SearchForm"]["properties"]["subjects"]["pattern"] = json!(concat!(
            "^(?:",
            subject_id_forms!(),
            ")(?:,(?:",
            subject_id_forms!(),
            ")){0,999}$"
        ));
        schemas["VerifyRequest"]["properties"]["subject"] = json!({"oneOf": [subject_id(), {"type": "null"}]});
        schemas["VerifyForm"]["properties"]["subject"] = subject_id();
        // Exactly one of the two, spelt as two whole closed objects (each without the other's field, so no
        // form matches both) under `anyOf`, which for disjoint branches means what `oneOf` means.
        // Not `allOf` + `oneOf`: schemathesis builds multipart bodies from top-level properties only and
        // sent both. Not `oneOf`: its generator checks "exactly one" with a validator that cannot read a
        // file part (`Unsupported type: 'Binary'`); `anyOf` needs no such check.
        let form = schemas["VerifyForm"].take();
        let without = |field: &str| {
            let mut object = form.clone();
            object["properties"].as_object_mut().map(|p| p.remove(field));
            object
        };
        let (mut by_references, by_subject) = (without("subject"), without("references"));
        by_references["required"] = json!(["candidate", "references"]);
        let mut by_subject = by_subject;
        by_subject["required"] = json!(["candidate", "subject"]);
        schemas["VerifyForm"] = json!({"anyOf": [by_references, by_subject]});
        let object = schemas["VerifyRequest"].take();
        // A JSON `null` counts as absent, as serde reads it.
        schemas["VerifyRequest"] = json!({"allOf": [object, {"oneOf": [
            {"type": "object", "required": ["references"], "properties": {"references": {"type": "array"}}},
            {"type": "object", "required": ["subject"], "properties": {"subject": {"type": "string"}}},
        ]}]});
    })
}

/// The served document of a server that does not fetch URLs: an image is base64 only.
pub(crate) fn without_url_inputs(api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    edit(api, |doc| {
        let image = &mut doc["components"]["schemas"]["ImageData"];
        image["oneOf"] = json!([{"$ref": "#/components/schemas/ImageBase64"}]);
        image["description"] =
            json!("An image inside a JSON request, its bytes in base64 (this server does not fetch URLs).");
    })
}

/// The served document of a server whose per-request image limit is `max_images` (the attributes say 32,
/// the default `--max-images`).
pub(crate) fn with_max_images(api: utoipa::openapi::OpenApi, max_images: u64) -> utoipa::openapi::OpenApi {
    edit(api, |doc| {
        for (_, schema) in object_entries(&mut doc["components"]["schemas"]) {
            // `get_mut`, not indexing: indexing would add `"properties": null` to schemas without any.
            let Some(properties) = schema.get_mut("properties") else {
                continue;
            };
            for (_, property) in object_entries(properties) {
                let of_images = matches!(
                    property["items"]["$ref"].as_str(),
                    Some("#/components/schemas/ImageData" | "#/components/schemas/ImageFile")
                );
                if of_images {
                    property["maxItems"] = json!(max_images);
                }
            }
        }
    })
}

/// Applies `change` to the document as JSON: the generic walk utoipa's typed tree makes long-winded.
fn edit(api: utoipa::openapi::OpenApi, change: impl FnOnce(&mut Value)) -> utoipa::openapi::OpenApi {
    let mut doc = serde_json::to_value(api).expect("the OpenAPI document serialises; this is a bug");
    change(&mut doc);
    serde_json::from_value(doc).expect("the tightened OpenAPI document is still one; this is a bug")
}

fn object_entries(value: &mut Value) -> impl Iterator<Item = (&String, &mut Value)> {
    value.as_object_mut().into_iter().flat_map(|map| map.iter_mut())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::check_id;

    #[test]
    fn the_subject_id_pattern_is_check_id() {
        let pattern = regex::Regex::new(SUBJECT_ID_PATTERN).unwrap();
        let long = "x".repeat(128);
        let too_long = "x".repeat(129);
        for id in [
            "a", ".", "..", "...", ".a", "..a", "a..", "-_.", &long, &too_long, "", "a/b", "é",
        ] {
            assert_eq!(pattern.is_match(id), check_id(id).is_ok(), "{id:?}");
        }
    }

    /// `anyOf` means "exactly one" only while no form can match both branches.
    #[test]
    fn the_verify_form_branches_are_disjoint() {
        let spec = serde_json::to_value(crate::http::openapi_spec()).unwrap();
        let branches = spec["components"]["schemas"]["VerifyForm"]["anyOf"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(branches.len(), 2);
        for (branch, (own, other)) in branches
            .iter()
            .zip([("references", "subject"), ("subject", "references")])
        {
            assert_eq!(branch["additionalProperties"], json!(false), "{branch}");
            assert!(branch["required"].as_array().unwrap().contains(&json!(own)), "{branch}");
            assert!(branch["properties"].get(other).is_none(), "{branch}");
        }
    }
}
