//! How a live socket presents its token: as the `nexacore.bearer.<token>` entry of
//! `Sec-WebSocket-Protocol` (the router answers `nexacore.v1`), or, for clients that predate
//! it, in the query string; nothing else gets a socket.

use reqwest::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::helpers::{Stack, unique};
use crate::realtime::Ws;

/// Connects to `/ws?{query}` offering `protocols` (if any): the socket and the protocol the
/// router chose, or the HTTP status it refused with.
async fn open(stack: &Stack, query: &str, protocols: Option<&str>) -> Result<(Ws, Option<String>), u16> {
    let url = format!("{}/ws?{query}", stack.router.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    if let Some(protocols) = protocols {
        request.headers_mut().insert("sec-websocket-protocol", protocols.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, response)) => {
            let chosen = response.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_owned());
            Ok((ws, chosen))
        }
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("unexpected failure: {other}"),
    }
}

/// The next employee event's e-mail on `ws`.
async fn next_email(ws: &mut Ws) -> String {
    use futures::StreamExt as _;
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await.expect("in time");
        if let tungstenite::Message::Text(text) = frame.unwrap().unwrap() {
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            if value["channel"] == "employees" {
                return value["data"]["email"].as_str().unwrap().to_owned();
            }
        }
    }
}

#[tokio::test]
async fn the_token_is_accepted_as_a_protocol_entry_and_in_the_deprecated_query_only() {
    let stack = Stack::start().await;
    let c = stack.signup(&unique("wsauth-")).await;

    let bearer = format!("nexacore.v1, nexacore.bearer.{}", c.token);
    let (mut by_protocol, chosen) = open(&stack, "", Some(&bearer)).await.expect("the protocol entry is accepted");
    assert_eq!(chosen.as_deref(), Some("nexacore.v1"), "only the protocol is echoed, never the token");
    let (mut by_query, _) = open(&stack, &format!("token={}", c.token), None).await.expect("old clients still work");

    let body =
        json!({"first_name": "Ws", "last_name": "Auth", "email": "ws@auth.example.com", "hire_date": "2024-01-15"});
    let created = stack.call(Method::POST, "/employees", &c.token).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(next_email(&mut by_protocol).await, "ws@auth.example.com");
    assert_eq!(next_email(&mut by_query).await, "ws@auth.example.com");

    // No token, a bearer entry without one, or a forged one: no socket.
    assert_eq!(open(&stack, "", None).await.err(), Some(401));
    assert_eq!(open(&stack, "", Some("nexacore.v1, nexacore.bearer.")).await.err(), Some(401));
    let forged = format!("nexacore.v1, nexacore.bearer.{}x", c.token);
    assert_eq!(open(&stack, "", Some(&forged)).await.err(), Some(401));
}
