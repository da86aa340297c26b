//! `JsonBody<T>`: a request body parsed with serde, whose errors name the offending field.
//!
//! poem-openapi's own `Json<T>` reports "expected string, found null" without saying which
//! field; the contract requires every 4xx about a field to name it. The OpenAPI schema still
//! comes from `T`'s poem-openapi `Object` derive, so the docs stay exact.

use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, payload::Json};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorBody};

pub struct JsonBody<T>(pub T);

/// The largest accepted body, attached to the routes with `.data(BodyLimit(n))`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    pub const DEFAULT: usize = 64 * 1024;
}

const CONTENT_TYPE: &str = "application/json; charset=utf-8";

fn reject(error: ApiError) -> poem::Error {
    error.into()
}

/// Turns a serde error at `path` into (field, message): `admin.email`, "expected a string".
fn describe(path: &str, error: &serde_json::Error) -> (Option<String>, String) {
    let text = error.to_string();
    // serde reports a missing field at the parent's path, naming it in the message.
    if let Some(rest) = text.strip_prefix("missing field `")
        && let Some(name) = rest.split('`').next()
    {
        let field = if path == "." || path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
        return (Some(field.clone()), format!("{field}: is required"));
    }
    let message = text.split(" at line ").next().unwrap_or(&text).to_owned();
    if path == "." || path.is_empty() { (None, message) } else { (Some(path.to_owned()), format!("{path}: {message}")) }
}

/// The path (`admin.email`, `items[2]`) of the first string or key holding a NUL, if any.
fn nul_path(value: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => Some(path.to_owned()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| nul_path(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here =
                if path.is_empty() { k.replace('\0', "\\0") } else { format!("{path}.{}", k.replace('\0', "\\0")) };
            if k.contains('\0') { Some(here) } else { nul_path(v, &here) }
        }),
        _ => None,
    }
}

impl<'a, T> ApiExtractor<'a> for JsonBody<T>
where
    T: Type + DeserializeOwned + Send,
{
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType { content_type: CONTENT_TYPE, schema: T::schema_ref() }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let json_type = request.content_type().and_then(|ct| ct.parse::<mime::Mime>().ok()).is_some_and(|m| {
            m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
        });
        if !json_type {
            return Err(reject(ApiError::bad_request(
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            )));
        }
        let limit = request.data::<BodyLimit>().map_or(BodyLimit::DEFAULT, |l| l.0);
        let too_large = || {
            let body = ErrorBody::new("payload_too_large", format!("the request body is larger than {limit} bytes"));
            reject(ApiError::PayloadTooLarge(Json(body)))
        };
        let declared = request.header("content-length").and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        let bytes = match body.take()?.into_bytes_limit(limit).await {
            Ok(bytes) => bytes,
            Err(poem::error::ReadBodyError::PayloadTooLarge) => return Err(too_large()),
            Err(e) => {
                return Err(reject(ApiError::bad_request(
                    "unreadable_body",
                    format!("cannot read the request body: {e}"),
                )));
            }
        };
        // Postgres text cannot hold NUL: refused here, naming the field, rather than failing
        // in a query (a 500). Only a body that spells `\u0000` can carry one.
        if bytes.windows(6).any(|w| w == b"\\u0000")
            && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && let Some(path) = nul_path(&value, "")
        {
            let field = if path.is_empty() { "body".to_owned() } else { path };
            let message = format!("{field}: must not contain NUL characters");
            return Err(reject(ApiError::Unprocessable(Json(ErrorBody::on_field("invalid_field", &field, message)))));
        }
        // serde reads a struct from a JSON array too (`[]` would be a request with every
        // optional field absent): a body documented as an object must be one.
        let documented_object = matches!(T::schema_ref(), poem_openapi::registry::MetaSchemaRef::Reference(_));
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if documented_object
            && first.is_some_and(|b| *b != b'{')
            && serde_json::from_slice::<serde_json::Value>(&bytes).is_ok()
        {
            return Err(reject(ApiError::Unprocessable(Json(ErrorBody::new(
                "invalid_body",
                "the body must be a JSON object",
            )))));
        }
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize::<_, T>(deserializer) {
            Ok(value) => Ok(Self(value)),
            Err(error) => {
                let path = error.path().to_string();
                let inner = error.into_inner();
                if inner.is_syntax() || inner.is_eof() {
                    return Err(reject(ApiError::bad_request(
                        "malformed_json",
                        format!("the body is not valid JSON: {inner}"),
                    )));
                }
                let (field, message) = describe(&path, &inner);
                let body = match field {
                    Some(f) => ErrorBody::on_field("invalid_field", &f, message),
                    None => ErrorBody::new("invalid_body", message),
                };
                Err(reject(ApiError::Unprocessable(Json(body))))
            }
        }
    }
}
