//! [`JsonReply`]: a JSON response body written straight from `serde::Serialize`.
//!
//! poem-openapi's `Json<T>` first builds a `serde_json::Value` tree of the whole body and then
//! prints it; for a page of 50 employees that allocation-heavy detour costs more than the
//! database query. `JsonReply` documents the same schema (from `T: Type`) but serialises
//! directly. The type must derive both `Object` and `Serialize` with the same field names; the
//! OpenAPI snapshot tests and the API tests guard that the two agree.

use poem::http::header::CONTENT_TYPE;
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::Serialize;

const CONTENT_TYPE_JSON: &str = "application/json; charset=utf-8";

/// A JSON response body serialised with serde, documented with poem-openapi's schema of `T`.
#[derive(Debug, Clone)]
pub struct JsonReply<T>(pub T);

impl<T: Type> Payload for JsonReply<T> {
    const CONTENT_TYPE: &'static str = CONTENT_TYPE_JSON;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Serialize + Send> IntoResponse for JsonReply<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => Response::builder().header(CONTENT_TYPE, CONTENT_TYPE_JSON).body(body),
            Err(error) => {
                // Only a non-string map key or a failing custom serialiser can get here: a bug.
                tracing::error!(%error, "a response body could not be serialised");
                crate::ApiError::internal("the response could not be encoded").into_response()
            }
        }
    }
}

impl<T: Type + Serialize + Send> ApiResponse for JsonReply<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType { content_type: Self::CONTENT_TYPE, schema: Self::schema_ref() }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}
