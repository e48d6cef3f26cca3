//! Tightens the generated OpenAPI document where utoipa's attributes cannot say it (identifiers given as
//! inline path parameters, a JSON request's "exactly one of two fields"), and specialises the served copy
//! to the running server's settings, so that every schema-valid request is one it accepts.

use serde_json::{json, Value};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::http::extract::request::FormRequest;
use crate::http::openapi::form_schema::without_null;
use crate::http::routes::verify::VerifyRequest;

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
    serde_json::to_value(SubjectIdSchema::schema()).expect("a schema serialises; this is a bug")
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
        exactly_one_of::<VerifyRequest>(&mut doc["components"]["schemas"]);
    })
}

/// A subject id's schema, for the fields that carry one (`value_type = SubjectIdSchema, inline`).
pub(crate) struct SubjectIdSchema;

impl PartialSchema for SubjectIdSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(128))
            .pattern(Some(SUBJECT_ID_PATTERN))
            .into()
    }
}

impl ToSchema for SubjectIdSchema {}

/// The JSON side of a request's "exactly one of" two fields (its form's side is in its own schema). A JSON
/// `null` counts as absent, as serde reads it.
fn exactly_one_of<R: ToSchema + FormRequest>(schemas: &mut Value) {
    let Some((one, other)) = R::EXACTLY_ONE_OF else { return };
    let schema = &mut schemas[R::name().as_ref()];
    let object = schema.take();
    let present = |field: &str| {
        let mut value = object["properties"][field].clone();
        without_null(&mut value);
        json!({"type": "object", "required": [field], "properties": {field: value}})
    };
    let branches = [present(one), present(other)];
    *schema = json!({"allOf": [object, {"oneOf": branches}]});
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
    use crate::http::routes::verify::VerifyForm;
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
        let branches = spec["components"]["schemas"][VerifyForm::name().as_ref()]["anyOf"]
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
