//! The schema of a request's multipart form, derived from its JSON schema: the same fields and
//! constraints, with what a form cannot say the way JSON does spelt the way a form says it.

use serde_json::{json, Value};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use crate::http::extract::request::FormRequest;

const IMAGE_DATA: &str = "#/components/schemas/ImageData";
const IMAGE_FILE: &str = "#/components/schemas/ImageFile";

/// `R`'s form: images are file parts (a list repeats its part), a list of short texts is one
/// comma-separated part, nothing is `null` (an absent part is an absent value), unknown parts are refused,
/// and "exactly one of" two fields is two closed objects under `anyOf`.
pub(crate) fn form_schema<R: ToSchema + FormRequest>() -> RefOr<Schema> {
    let mut schema = serde_json::to_value(R::schema()).expect("a schema serialises; this is a bug");
    schema["description"] = json!(format!(
        "`{}` as `multipart/form-data`: every image a file part (a list repeats its part, in order), every \
         other field a text part.",
        R::name()
    ));
    schema["additionalProperties"] = json!(false);
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for property in properties.values_mut() {
            as_form_part(property);
        }
    }
    if let Some((one, other)) = R::EXACTLY_ONE_OF {
        schema = exactly_one_of(&schema, one, other);
    }
    serde_json::from_value(schema).expect("the form's schema is still one; this is a bug")
}

/// `property` without `null` among its values: `["number", "null"]` is a number, `oneOf: [{null}, X]` is X.
pub(crate) fn without_null(property: &mut Value) {
    if let Some(types) = property["type"].as_array() {
        let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if let [one] = kept.as_slice() {
            property["type"] = one.clone();
        }
    }
    if let Some(branches) = property["oneOf"].as_array() {
        let kept: Vec<Value> = branches.iter().filter(|b| b["type"] != "null").cloned().collect();
        if let [one] = kept.as_slice() {
            replace_keeping_description(property, one.clone());
        }
    }
}

/// `property` becomes `by`, with the description the field's doc gave it.
fn replace_keeping_description(property: &mut Value, by: Value) {
    let description = property.get("description").cloned();
    *property = by;
    if let Some(description) = description {
        property["description"] = description;
    }
}

fn as_form_part(property: &mut Value) {
    // Nothing is null in a form: an absent part is an absent value.
    without_null(property);
    if property["$ref"] == IMAGE_DATA {
        property["$ref"] = json!(IMAGE_FILE);
    }
    if property["type"] == "array" && property["items"]["$ref"] == IMAGE_DATA {
        property["items"] = json!({"$ref": IMAGE_FILE});
    }
    // A list of ids travels as one text part, the ids separated by commas.
    if property["type"] == "array" && property["items"]["type"] == "string" {
        if let Some(item) = property["items"]["pattern"].as_str() {
            let item = item.trim_start_matches('^').trim_end_matches('$');
            let most = property["maxItems"].as_u64().unwrap_or(1).max(1);
            let pattern = format!("^{item}(?:,{item}){{0,{}}}$", most - 1);
            replace_keeping_description(property, json!({"type": "string", "pattern": pattern}));
        }
    }
}

/// Exactly one of the two, spelt as two whole closed objects (each without the other's field, so that no
/// form matches both) under `anyOf`, which for disjoint branches means what `oneOf` means. Not `allOf` +
/// `oneOf`: schemathesis builds multipart bodies from top-level properties only and sent both. Not
/// `oneOf`: its generator checks "exactly one" with a validator that cannot read a file part
/// (`Unsupported type: 'Binary'`); `anyOf` needs no such check.
fn exactly_one_of(schema: &Value, one: &str, other: &str) -> Value {
    let branch = |own: &str, left_out: &str| {
        let mut branch = schema.clone();
        if let Some(properties) = branch["properties"].as_object_mut() {
            properties.remove(left_out);
        }
        let mut required: Vec<Value> = branch["required"].as_array().cloned().unwrap_or_default();
        required.push(json!(own));
        branch["required"] = json!(required);
        branch
    };
    json!({"anyOf": [branch(one, other), branch(other, one)]})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::compare::{CompareForm, CompareRequest};
    use crate::http::routes::embed::{EmbedForm, EmbedRequest};
    use crate::http::routes::search::{SearchForm, SearchRequest};
    use crate::http::routes::verify::{VerifyForm, VerifyRequest};
    use utoipa::PartialSchema;

    /// The form's parts, the parts the extractor accepts and the JSON fields are one list; no form
    /// value is `null`; images are files.
    fn check<R: ToSchema + FormRequest, F: ToSchema>() {
        let json = serde_json::to_value(R::schema()).unwrap();
        let form = serde_json::to_value(F::schema()).unwrap();
        let branches = form["anyOf"].as_array().cloned().unwrap_or_else(|| vec![form.clone()]);
        let mut form_fields: Vec<String> = branches
            .iter()
            .flat_map(|b| b["properties"].as_object().unwrap().keys().cloned())
            .collect();
        form_fields.sort();
        form_fields.dedup();
        let mut json_fields: Vec<String> = json["properties"].as_object().unwrap().keys().cloned().collect();
        json_fields.sort();
        let mut accepted: Vec<String> = R::FIELDS.iter().map(|f| f.name.to_string()).collect();
        accepted.sort();
        assert_eq!(form_fields, json_fields, "{}", F::name());
        assert_eq!(accepted, json_fields, "{}", F::name());
        if let Some(threshold) = json["properties"].get("threshold") {
            assert_eq!(threshold["maximum"], json!(f32::MAX), "{}: a finite f32", R::name());
        }
        for branch in &branches {
            assert_eq!(branch["additionalProperties"], json!(false), "{}", F::name());
            let text = branch.to_string();
            assert!(!text.contains("null"), "{}: {text}", F::name());
            assert!(!text.contains(IMAGE_DATA), "{}: {text}", F::name());
        }
    }

    #[test]
    fn every_form_is_its_json_request_with_files() {
        check::<CompareRequest, CompareForm>();
        check::<EmbedRequest, EmbedForm>();
        check::<SearchRequest, SearchForm>();
        check::<VerifyRequest, VerifyForm>();
    }

    /// The comma-separated form of a list of ids accepts what the JSON list's items accept, up to its length
    /// (checked here with the bound cut to 3 ids: the regex crate refuses to compile 1000 repetitions).
    #[test]
    fn a_list_of_ids_becomes_one_comma_separated_part() {
        let form = serde_json::to_value(SearchForm::schema()).unwrap();
        let json = serde_json::to_value(SearchRequest::schema()).unwrap();
        let pattern = form["properties"]["subjects"]["pattern"].as_str().unwrap();
        assert!(pattern.ends_with("){0,999}$"), "{pattern}");
        let item = json["properties"]["subjects"]["items"]["pattern"].as_str().unwrap();
        let item = item.trim_start_matches('^').trim_end_matches('$');
        assert!(pattern.starts_with(&format!("^{item}(?:,{item})")), "{pattern}");
        let pattern = regex::Regex::new(&pattern.replace("{0,999}", "{0,2}")).unwrap();
        assert!(pattern.is_match("a") && pattern.is_match("a,b.c,..d"));
        assert!(!pattern.is_match("a,b,c,d"), "more ids than the list holds");
        assert!(!pattern.is_match("a,,b") && !pattern.is_match("a b") && !pattern.is_match(".."));
    }
}
