//! Abuse stays bounded: slow clients are cut off, and request timeouts hold.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_slowloris_client_is_cut_off_after_the_header_timeout_while_a_prompt_client_is_served() {
    let app = TestApp::spawn_with(|c| c.http.header_timeout = Duration::from_secs(1)).await;
    let address = app.base.trim_start_matches("http://").to_owned();

    // One header line every 300 ms: never idle, never done.
    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut cut_off = None;
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if slow.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes()).await.is_err() {
            cut_off = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut_off = Some(started.elapsed());
                break;
            }
            Ok(Ok(_)) => panic!("the server answered a request whose head never ended"),
            Err(_) => {}
        }
    }
    let cut_off = cut_off.expect("the server closed the slow connection within 12 s");
    assert!(cut_off >= Duration::from_millis(900), "not before the header timeout: {cut_off:?}");

    // A client that sends its head at once is served as usual.
    let health = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
