//! Processing and serving: an EXIF-rotated JPEG with GPS becomes upright variants without
//! metadata; bytes decide the type; limits stop a decompression bomb; variants are served
//! with ranges, ETags and negotiation; posts are made from uploads.

use image::GenericImageView;
use reqwest::{StatusCode, header};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use super::{fixtures, media_events, settled, upload};
use crate::common::{TestServer, code};

const CREATE: &str = "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id media { \
    status mimeType width height blurhash dominantColor aspectRatio altText \
    url(width: 100, dpr: 1.5) webp: url(width: 100, dpr: 1.5, format: WEBP) jpeg: url(format: JPEG) \
    variants { width height url(format: JPEG) } } } } }";

fn is_red(px: image::Rgba<u8>) -> bool {
    px[0] > 150 && px[2] < 100
}

fn is_blue(px: image::Rgba<u8>) -> bool {
    px[2] > 150 && px[0] < 100
}

#[tokio::test]
async fn a_rotated_jpeg_with_gps_is_served_upright_without_metadata() {
    let server = TestServer::start(3).await;
    let alice = server.token("alice").await;
    let original = fixtures::rotated_jpeg_with_gps();
    assert!(fixtures::has_metadata(&original));
    let id = upload(&server, &alice, &original, "image/jpeg").await;
    let ready = settled(&server, &alice, &id).await;
    assert_eq!(ready["status"], "READY", "{ready}");
    assert_eq!(ready["mimeType"], "image/jpeg");
    assert_eq!((ready["width"].as_i64(), ready["height"].as_i64()), (Some(200), Some(400)), "upright");
    assert_eq!(ready["blurhash"].as_str().unwrap().len(), 28);
    let widths: Vec<i64> = ready["variants"].as_array().unwrap().iter().map(|v| v["width"].as_i64().unwrap()).collect();
    assert_eq!(widths, vec![160, 200], "ladder steps below the width, then the width: never upscaled");
    assert_eq!(
        media_events(&server, &alice).await,
        vec![json!({ "kind": "MEDIA_READY", "media": { "uploadId": id, "reason": null } })]
    );
    let pushes = mobile_bff::push::entities::notification::Entity::find()
        .filter(mobile_bff::push::entities::notification::Column::Silent.eq(true))
        .all(server.app().db.conn())
        .await
        .unwrap();
    assert!(
        pushes.iter().any(|p| p.data["type"] == "media_ready" && p.data["uploadId"] == id.as_str()),
        "a silent push mirrors the event: {pushes:?}"
    );

    let created = server
        .data(
            CREATE,
            json!({ "input": { "body": "sideways", "media": [{ "uploadId": id, "altText": "flag",
            "width": 1, "height": 1, "blurhash": "ignored", "storageKey": "ignored", "mimeType": "image/gif" }] } }),
            Some(&alice),
        )
        .await;
    let media = &created["createPost"]["post"]["media"][0];
    assert_eq!(media["status"], "READY");
    assert_eq!((media["width"].as_i64(), media["height"].as_i64()), (Some(200), Some(400)), "client sizes ignored");
    assert_eq!(media["blurhash"], ready["blurhash"]);
    assert_eq!(media["mimeType"], "image/jpeg");
    assert_eq!(media["aspectRatio"], 0.5);
    assert_eq!(media["altText"], "flag");
    let url = media["url"].as_str().unwrap();
    assert!(url.starts_with("/media/") && url.ends_with("/160"), "100 × 1.5 = 150 → the 160 step: {url}");
    assert!(media["webp"].as_str().unwrap().ends_with("/160.webp"));
    assert!(media["jpeg"].as_str().unwrap().ends_with("/200.jpg"), "no width: the original's size");

    // Negotiated by Accept: WebP for a client that takes it, JPEG otherwise.
    let webp =
        server.client.get(format!("{}{url}", server.base)).header("accept", "image/webp,*/*").send().await.unwrap();
    assert_eq!(webp.status(), StatusCode::OK);
    assert_eq!(webp.headers()[header::CONTENT_TYPE], "image/webp");
    assert_eq!(webp.headers()[header::VARY], "Accept");
    assert_eq!(webp.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    let bytes = webp.bytes().await.unwrap();
    assert!(!fixtures::has_metadata(&bytes), "no EXIF in the WebP");
    let decoded = image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP).unwrap();
    assert_eq!(decoded.dimensions(), (160, 320), "upright, at least the asked 150 px, at most the next step");
    assert!(is_red(decoded.get_pixel(80, 10)) && is_blue(decoded.get_pixel(80, 310)), "red on top, blue below");

    let jpeg = server.client.get(format!("{}{url}", server.base)).header("accept", "image/jpeg").send().await.unwrap();
    assert_eq!(jpeg.headers()[header::CONTENT_TYPE], "image/jpeg");
    let bytes = jpeg.bytes().await.unwrap();
    assert!(!fixtures::has_metadata(&bytes), "no EXIF in the JPEG");
    let decoded = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!(decoded.dimensions(), (160, 320));
    assert!(is_red(decoded.get_pixel(80, 10)) && is_blue(decoded.get_pixel(80, 310)));
    for variant in media["variants"].as_array().unwrap() {
        let served =
            server.client.get(format!("{}{}", server.base, variant["url"].as_str().unwrap())).send().await.unwrap();
        let vary: Vec<String> =
            served.headers().get_all(header::VARY).iter().map(|v| v.to_str().unwrap().to_ascii_lowercase()).collect();
        assert!(
            !vary.iter().flat_map(|v| v.split(',')).any(|v| v.trim() == "accept"),
            "a fixed format does not vary: {vary:?}"
        );
        let bytes = served.bytes().await.unwrap();
        assert!(!fixtures::has_metadata(&bytes));
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!(i64::from(decoded.width()), variant["width"].as_i64().unwrap());
    }
    server.stop().await;
}

#[tokio::test]
async fn variants_serve_ranges_heads_and_etags() {
    let server = TestServer::start(3).await;
    let alice = server.token("alice").await;
    let id = upload(&server, &alice, &fixtures::png(), "image/png").await;
    let ready = settled(&server, &alice, &id).await;
    let path = ready["variants"][0]["url"].as_str().unwrap().to_owned();
    let url = format!("{}{path}", server.base);
    let full = server.client.get(&url).send().await.unwrap();
    let etag = full.headers()[header::ETAG].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "strong: {etag}");
    assert_eq!(full.headers()[header::ACCEPT_RANGES], "bytes");
    let whole = full.bytes().await.unwrap();
    let len = whole.len();

    let part = server.client.get(&url).header(header::RANGE, "bytes=0-9").send().await.unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()[header::CONTENT_RANGE], format!("bytes 0-9/{len}").as_str());
    assert_eq!(part.bytes().await.unwrap(), whole.slice(0..10));
    let tail = server.client.get(&url).header(header::RANGE, "bytes=-5").send().await.unwrap();
    assert_eq!(tail.bytes().await.unwrap(), whole.slice(len - 5..));
    let outside = server.client.get(&url).header(header::RANGE, format!("bytes={len}-")).send().await.unwrap();
    assert_eq!(outside.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(outside.headers()[header::CONTENT_RANGE], format!("bytes */{len}").as_str());
    assert!(outside.headers()[header::CONTENT_TYPE].to_str().unwrap().contains("json"));
    let head = server.client.head(&url).send().await.unwrap();
    assert_eq!(head.headers()[header::CONTENT_LENGTH], len.to_string().as_str());
    assert!(head.bytes().await.unwrap().is_empty());
    let cached = server.client.get(&url).header(header::IF_NONE_MATCH, &etag).send().await.unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let stale_range = server
        .client
        .get(&url)
        .header(header::RANGE, "bytes=0-9")
        .header(header::IF_RANGE, "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale_range.status(), StatusCode::OK, "If-Range with another tag gets the whole file");

    for missing in [
        "/media/0000000000000000000000000000000000000000000000000000000000000000/160.jpg",
        "/media/../etc/passwd",
        "/media/xyz/1",
    ] {
        let response = server.client.get(format!("{}{missing}", server.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
        assert!(response.headers()[header::CONTENT_TYPE].to_str().unwrap().contains("json"));
    }
    server.stop().await;
}

#[tokio::test]
async fn bytes_decide_the_type_and_limits_stop_a_decompression_bomb() {
    let server = TestServer::start(3).await;
    let alice = server.token("alice").await;
    // A PNG declared (and named) as a JPEG is processed as the PNG it is.
    let id = upload(&server, &alice, &fixtures::png(), "image/jpeg").await;
    let ready = settled(&server, &alice, &id).await;
    assert_eq!(ready["status"], "READY", "{ready}");
    assert_eq!(ready["mimeType"], "image/png");
    assert_eq!(ready["dominantColor"], "#1ec83c");

    let bomb = upload(&server, &alice, &fixtures::png_bomb(), "image/png").await;
    let failed = settled(&server, &alice, &bomb).await;
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["failureReason"], "LIMITS_EXCEEDED");
    assert!(failed["failureDetail"].as_str().unwrap().contains("pixels"), "{failed}");
    let text = upload(&server, &alice, b"just some text, certainly not a picture", "image/jpeg").await;
    assert_eq!(settled(&server, &alice, &text).await["failureReason"], "UNSUPPORTED_TYPE");
    // Videos are stored and marked as not processable here, not silently broken.
    let mp4 = [b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2".as_slice(), &[0u8; 64]].concat();
    let video = upload(&server, &alice, &mp4, "video/mp4").await;
    let stored = settled(&server, &alice, &video).await;
    assert_eq!(
        (stored["status"].as_str(), stored["failureReason"].as_str()),
        (Some("FAILED"), Some("PROCESSING_UNAVAILABLE"))
    );
    let original =
        server.app().settings.media.local_dir(&server.app().settings.data_dir).join("objects/originals").join(&video);
    assert_eq!(std::fs::read(original).unwrap(), mp4, "the video is kept");
    let disguised = upload(&server, &alice, &mp4, "image/jpeg").await;
    assert_eq!(settled(&server, &alice, &disguised).await["failureReason"], "UNSUPPORTED_TYPE");
    let events = media_events(&server, &alice).await;
    assert!(
        events.iter().any(|e| e["kind"] == "MEDIA_FAILED"
            && e["media"]["uploadId"] == bomb.as_str()
            && e["media"]["reason"] == "LIMITS_EXCEEDED"),
        "{events:?}"
    );

    // A failed upload cannot be attached.
    let body =
        server.gql(CREATE, json!({ "input": { "body": "boom", "media": [{ "uploadId": bomb }] } }), Some(&alice)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    server.stop().await;
}

#[tokio::test]
async fn posts_take_only_the_viewers_complete_uploads() {
    let server = TestServer::start(3).await;
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);
    let id = upload(&server, &alice, &fixtures::png(), "image/png").await;
    let body =
        server.gql(CREATE, json!({ "input": { "body": "mine?", "media": [{ "uploadId": id }] } }), Some(&bob)).await;
    assert_eq!(code(&body), "NOT_FOUND", "someone else's upload: {body}");
    let unfinished = super::tus_create(&server, &alice, 10, "image/png").await;
    let body = server
        .gql(
            CREATE,
            json!({ "input": { "body": "soon", "media": [{ "uploadId": super::upload_id(&unfinished) }] } }),
            Some(&alice),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "incomplete: {body}");
    let body = server
        .gql(
            CREATE,
            json!({ "input": { "body": "twice", "media": [{ "uploadId": id }, { "uploadId": id }] } }),
            Some(&alice),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    // Attached right away (still processing or ready): the post shows the server's facts once ready.
    let created =
        server.data(CREATE, json!({ "input": { "body": "ok", "media": [{ "uploadId": id }] } }), Some(&alice)).await;
    let post_id = created["createPost"]["post"]["id"].clone();
    settled(&server, &alice, &id).await;
    let query = "query($id: ID!) { post(id: $id) { media { status width height mimeType variants { width } } } }";
    let data = server.data(query, json!({ "id": post_id }), None).await;
    assert_eq!(data["post"]["media"][0]["status"], "READY");
    assert_eq!(data["post"]["media"][0]["width"], 300);
    assert_eq!(data["post"]["media"][0]["variants"], json!([{ "width": 160 }, { "width": 300 }]));
    // An attached upload cannot be terminated under the post.
    let deleted = super::tus(&server, reqwest::Method::DELETE, &format!("/uploads/{id}"), &alice).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::CONFLICT);
    server.stop().await;
}
