//! The tus protocol, the signed `PUT` and quotas.

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha1::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{create_upload, metadata, settled, tus, tus_create, tus_patch, upload_id};
use crate::common::{TestServer, code};

async fn offset_of(server: &TestServer, token: &str, location: &str) -> u64 {
    let response = tus(server, Method::HEAD, location, token).send().await.expect("head");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.headers()["upload-offset"].to_str().expect("offset").parse().expect("number")
}

async fn error_json(response: reqwest::Response) -> Value {
    assert!(
        response.headers()["content-type"].to_str().unwrap_or_default().contains("json"),
        "errors are JSON: {:?}",
        response.headers()
    );
    response.json().await.expect("JSON error")
}

fn original(server: &TestServer, id: &str) -> std::path::PathBuf {
    server.app().settings.media.local_dir(&server.app().settings.data_dir).join("objects/originals").join(id)
}

#[tokio::test]
async fn tus_follows_the_protocol_and_refuses_what_breaks_it() {
    let server = TestServer::start(5).await;
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);

    let discovery = server.client.request(Method::OPTIONS, format!("{}/uploads/", server.base)).send().await.unwrap();
    assert_eq!(discovery.status(), StatusCode::NO_CONTENT);
    assert_eq!(discovery.headers()["tus-version"], "1.0.0");
    let extensions = discovery.headers()["tus-extension"].to_str().unwrap();
    for extension in ["creation", "creation-with-upload", "termination", "expiration", "checksum"] {
        assert!(extensions.split(',').any(|e| e == extension), "{extensions}");
    }
    assert!(discovery.headers()["tus-checksum-algorithm"].to_str().unwrap().contains("sha1"));

    // Version, credentials and metadata.
    let no_version = server
        .client
        .post(format!("{}/uploads/", server.base))
        .bearer_auth(&alice)
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(no_version.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(no_version.headers()["tus-version"], "1.0.0");
    assert_eq!(code(&error_json(no_version).await), "BAD_REQUEST");
    let anonymous = server
        .client
        .post(format!("{}/uploads/", server.base))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(&error_json(anonymous).await), "UNAUTHENTICATED");
    for (length, meta) in [
        ("10", "filename !!!"),
        ("10", "filename eQ==,filename eQ=="),
        ("10", ""),
        ("ten", &metadata(&[("filename", "a.jpg"), ("filetype", "image/jpeg")])),
        ("10", &metadata(&[("filename", "a.exe"), ("filetype", "application/x-msdownload")])),
    ] {
        let response = tus(&server, Method::POST, "/uploads/", &alice)
            .header("upload-length", length)
            .header("upload-metadata", meta)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{length} {meta}");
        assert_eq!(code(&error_json(response).await), "BAD_USER_INPUT");
    }

    let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let location = tus_create(&server, &alice, bytes.len(), "image/jpeg").await;
    assert!(location.ends_with(&format!("/uploads/{}", upload_id(&location))));
    assert_eq!(offset_of(&server, &alice, &location).await, 0);

    // Someone else's upload does not exist for them.
    let foreign = tus(&server, Method::HEAD, &location, &bob).send().await.unwrap();
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    let foreign = tus_patch(&server, &bob, &location, 0, bytes[..10].to_vec()).await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);

    // First chunk with a good sha1, then a wrong offset, then a wrong checksum.
    let chunk = bytes[..400].to_vec();
    let digest = STANDARD.encode(sha1::Sha1::digest(&chunk));
    let response = tus(&server, Method::PATCH, &location, &alice)
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-checksum", format!("sha1 {digest}"))
        .body(chunk)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.headers()["upload-offset"], "400");
    assert!(response.headers().contains_key("upload-expires"));

    let wrong_offset = tus_patch(&server, &alice, &location, 100, bytes[100..200].to_vec()).await;
    assert_eq!(wrong_offset.status(), StatusCode::CONFLICT);
    assert_eq!(wrong_offset.headers()["upload-offset"], "400");
    let body = error_json(wrong_offset).await;
    assert_eq!(code(&body), "CONFLICT");
    assert_eq!(body["errors"][0]["extensions"]["uploadOffset"], 400);

    let wrong_sum = tus(&server, Method::PATCH, &location, &alice)
        .header("upload-offset", "400")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-checksum", format!("sha1 {}", STANDARD.encode(sha1::Sha1::digest(b"something else"))))
        .body(bytes[400..700].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_sum.status().as_u16(), 460);
    assert_eq!(error_json(wrong_sum).await["errors"][0]["extensions"]["reason"], "CHECKSUM_MISMATCH");
    assert_eq!(offset_of(&server, &alice, &location).await, 400, "the bad chunk was discarded");

    let unknown_algorithm = tus(&server, Method::PATCH, &location, &alice)
        .header("upload-offset", "400")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-checksum", "crc32 AAAAAA==")
        .body(bytes[400..700].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_algorithm.status(), StatusCode::BAD_REQUEST);
    let wrong_type = tus(&server, Method::PATCH, &location, &alice)
        .header("upload-offset", "400")
        .header("content-type", "application/octet-stream")
        .body(bytes[400..700].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // X-HTTP-Method-Override carries the rest.
    let overridden = tus(&server, Method::POST, &location, &alice)
        .header("x-http-method-override", "PATCH")
        .header("upload-offset", "400")
        .header("content-type", "application/offset+octet-stream")
        .body(bytes[400..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(overridden.status(), StatusCode::NO_CONTENT);
    assert_eq!(overridden.headers()["upload-offset"], "1000");
    assert_eq!(std::fs::read(original(&server, &upload_id(&location))).unwrap(), bytes, "assembled exactly");
    let beyond = tus_patch(&server, &alice, &location, 1000, vec![1, 2, 3]).await;
    assert!(beyond.status().is_client_error());

    // Termination.
    let other = tus_create(&server, &alice, 50, "image/png").await;
    let deleted = tus(&server, Method::DELETE, &other, &alice).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = tus(&server, Method::HEAD, &other, &alice).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn creation_with_upload_and_concurrent_patches_commit_one_chunk() {
    let server = TestServer::start(3).await;
    let alice = server.token("alice").await;
    let bytes: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 256) as u8).collect();

    // creation-with-upload: the first 5000 bytes ride on the POST.
    let response = tus(&server, Method::POST, "/uploads/", &alice)
        .header("upload-length", bytes.len().to_string())
        .header("upload-metadata", metadata(&[("filename", "a.jpg"), ("filetype", "image/jpeg")]))
        .header("content-type", "application/offset+octet-stream")
        .body(bytes[..5000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["upload-offset"], "5000");
    let location = response.headers()["location"].to_str().unwrap().to_owned();

    // Two PATCHes race at offset 5000 with different bytes: exactly one commits.
    let mut other = bytes[5000..12_000].to_vec();
    other.iter_mut().for_each(|b| *b = b.wrapping_add(1));
    let (first, second) = tokio::join!(
        tus_patch(&server, &alice, &location, 5000, bytes[5000..12_000].to_vec()),
        tus_patch(&server, &alice, &location, 5000, other.clone())
    );
    let statuses = [first.status(), second.status()];
    assert!(statuses.contains(&StatusCode::NO_CONTENT) && statuses.contains(&StatusCode::CONFLICT), "{statuses:?}");
    let winner_is_first = first.status() == StatusCode::NO_CONTENT;
    assert_eq!(offset_of(&server, &alice, &location).await, 12_000);
    let rest = tus_patch(&server, &alice, &location, 12_000, bytes[12_000..].to_vec()).await;
    assert_eq!(rest.status(), StatusCode::NO_CONTENT);
    let mut expected = bytes.clone();
    if !winner_is_first {
        expected.splice(5000..12_000, other);
    }
    assert_eq!(std::fs::read(original(&server, &upload_id(&location))).unwrap(), expected, "the winner's bytes, whole");
    server.stop().await;
}

/// Sends a PATCH whose body stops halfway, then drops the connection.
async fn cut_off_patch(server: &TestServer, token: &str, location: &str, offset: usize, body: &[u8], sent: usize) {
    let path = location.strip_prefix(&server.base).unwrap_or(location).to_owned();
    let mut socket = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&body[..sent]).await.unwrap();
    socket.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    socket.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), socket.read_to_end(&mut rest)).await;
}

#[tokio::test]
async fn a_cut_off_chunk_keeps_what_arrived_and_the_upload_resumes_without_a_lock() {
    let server = TestServer::start(3).await;
    let alice = server.token("alice").await;
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 13 % 256) as u8).collect();
    let location = tus_create(&server, &alice, bytes.len(), "image/jpeg").await;
    cut_off_patch(&server, &alice, &location, 0, &bytes, 60_000).await;
    // The server sees the body end early: what arrived is committed (at most the 60 000 sent).
    let mut offset = 0;
    for _ in 0..100 {
        offset = offset_of(&server, &alice, &location).await;
        if offset > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(offset > 0 && offset <= 60_000, "offset {offset}");
    // No lock held by the dead connection: the resume goes through at once.
    let offset = usize::try_from(offset).unwrap();
    let resumed = tus_patch(&server, &alice, &location, offset, bytes[offset..].to_vec()).await;
    assert_eq!(resumed.status(), StatusCode::NO_CONTENT);
    assert_eq!(std::fs::read(original(&server, &upload_id(&location))).unwrap(), bytes);
    server.stop().await;
}

#[tokio::test]
async fn quotas_are_checked_at_creation_and_during_patches() {
    let server = TestServer::start_with(3, |s| {
        s.media.max_image_bytes = 1000;
        s.media.user_quota_bytes = 1500;
    })
    .await;
    let alice = server.token("alice").await;
    let too_big = create_upload(&server, &alice, "image/jpeg", 2000).await;
    assert_eq!(code(&too_big), "QUOTA_EXCEEDED", "{too_big}");
    assert_eq!(too_big["errors"][0]["extensions"]["maxSizeBytes"], 1000);
    assert_eq!(too_big["errors"][0]["extensions"]["remainingQuota"], 1500);
    let first = create_upload(&server, &alice, "image/jpeg", 1000).await;
    assert!(first.get("errors").is_none(), "{first}");
    // A retried creation with an idempotency key is the same upload, charged once.
    let keyed = "mutation($input: CreateUploadInput!) { createUpload(input: $input) { upload { id } } }";
    let input =
        json!({ "filename": "k.jpg", "mimeType": "image/jpeg", "sizeBytes": 200, "idempotencyKey": "upload-key-1" });
    let once = server.data(keyed, json!({ "input": input }), Some(&alice)).await;
    let twice = server.data(keyed, json!({ "input": input }), Some(&alice)).await;
    assert_eq!(once, twice);
    let other_input =
        json!({ "filename": "k.jpg", "mimeType": "image/jpeg", "sizeBytes": 201, "idempotencyKey": "upload-key-1" });
    assert_eq!(code(&server.gql(keyed, json!({ "input": other_input }), Some(&alice)).await), "CONFLICT");
    let id = once["createUpload"]["upload"]["id"].as_str().unwrap();
    assert_eq!(
        tus(&server, Method::DELETE, &format!("/uploads/{id}"), &alice).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let over_quota = create_upload(&server, &alice, "image/jpeg", 1000).await;
    assert_eq!(code(&over_quota), "QUOTA_EXCEEDED");
    assert_eq!(over_quota["errors"][0]["extensions"]["maxSizeBytes"], 500);
    assert_eq!(over_quota["errors"][0]["extensions"]["remainingQuota"], 500);

    // The same refusal on the tus route is a 413 with the same JSON.
    let refused = tus(&server, Method::POST, "/uploads/", &alice)
        .header("upload-length", "900")
        .header("upload-metadata", metadata(&[("filename", "a.jpg"), ("filetype", "image/jpeg")]))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = error_json(refused).await;
    assert_eq!(code(&body), "QUOTA_EXCEEDED");
    assert_eq!(body["errors"][0]["extensions"]["remainingQuota"], 500);

    // A PATCH carrying more than Upload-Length is cut with 413; nothing is kept.
    let location = tus_create(&server, &alice, 300, "image/jpeg").await;
    let over = tus_patch(&server, &alice, &location, 0, vec![7u8; 400]).await;
    assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&error_json(over).await), "QUOTA_EXCEEDED");
    assert_eq!(offset_of(&server, &alice, &location).await, 0);

    // Deleting an upload gives its quota back.
    let id = first["data"]["createUpload"]["upload"]["id"].as_str().unwrap();
    let deleted = tus(&server, Method::DELETE, &format!("/uploads/{id}"), &alice).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let fits = create_upload(&server, &alice, "image/jpeg", 1000).await;
    assert!(fits.get("errors").is_none(), "{fits}");
    server.stop().await;
}

#[tokio::test]
async fn expired_uploads_answer_410_and_the_sweep_gives_their_quota_back() {
    let server = TestServer::start_with(3, |s| {
        s.media.upload_expiry_seconds = 1;
        s.media.user_quota_bytes = 1000;
    })
    .await;
    let alice = server.token("alice").await;
    let location = tus_create(&server, &alice, 800, "image/jpeg").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let expired = tus(&server, Method::HEAD, &location, &alice).send().await.unwrap();
    assert_eq!(expired.status(), StatusCode::GONE);
    assert_eq!(code(&create_upload(&server, &alice, "image/jpeg", 800).await), "QUOTA_EXCEEDED");
    let app = server.app();
    let swept = app.media.finisher(app).sweep(&app.settings.media).await.unwrap();
    assert!(swept >= 1);
    let gone = tus(&server, Method::HEAD, &location, &alice).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let fits = create_upload(&server, &alice, "image/jpeg", 800).await;
    assert!(fits.get("errors").is_none(), "{fits}");
    server.stop().await;
}

#[tokio::test]
async fn the_signed_put_takes_exactly_the_declared_bytes() {
    let server = TestServer::start(3).await;
    let alice = server.token("alice").await;
    let png = super::fixtures::png();
    let created = create_upload(&server, &alice, "image/png", png.len()).await;
    let payload = &created["data"]["createUpload"];
    let put_url = payload["putUrl"].as_str().unwrap().to_owned();
    assert!(payload["tusUrl"].as_str().unwrap().ends_with(payload["upload"]["id"].as_str().unwrap()));
    assert_eq!(
        payload["putHeaders"],
        json!([{ "name": "Content-Type", "value": "image/png" },
        { "name": "Content-Length", "value": png.len().to_string() }])
    );
    let url = format!("{}{put_url}", server.base);

    let forged = server.client.put(url.replace("signature=", "signature=x")).body(png.clone()).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(&error_json(forged).await), "UNAUTHENTICATED");
    let longer = server.client.put(&url).body([png.clone(), vec![0; 10]].concat()).send().await.unwrap();
    assert_eq!(longer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let put = server.client.put(&url).header("content-type", "image/png").body(png.clone()).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let body: Value = put.json().await.unwrap();
    assert_eq!(body["receivedBytes"], png.len());
    let again = server.client.put(&url).body(png.clone()).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT, "the URL is spent");

    let ready = settled(&server, &alice, payload["upload"]["id"].as_str().unwrap()).await;
    assert_eq!(ready["status"], "READY", "{ready}");
    assert_eq!((ready["width"].as_i64(), ready["height"].as_i64()), (Some(300), Some(150)));
    server.stop().await;
}
