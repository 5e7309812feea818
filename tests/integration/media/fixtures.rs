//! Test images made in code: a JPEG stored sideways with EXIF `Orientation = 6` and GPS tags
//! (the committed `tests/media/fixtures/rotated-gps.jpg` for the tus-js-client suite is this
//! output), a PNG, and a PNG header that claims 3.6 gigapixels (a decompression bomb).

use std::io::Cursor;

use image::{ImageEncoder, ImageFormat, Rgb, RgbImage};

/// Stored width and height of the rotated fixture (upright it is 200 × 400).
pub const STORED: (u32, u32) = (400, 200);

/// A little-endian TIFF (EXIF) block: IFD0 with Orientation = 6 and a GPS IFD with latitude
/// 52° 31' N, longitude 13° 24' E.
pub fn exif_orientation_6_with_gps() -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II\x2a\x00");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    let entry = |tiff: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&kind.to_le_bytes());
        tiff.extend_from_slice(&count.to_le_bytes());
        tiff.extend_from_slice(&value);
    };
    // IFD0 at 8: 2 entries → 2 + 24 + 4 = 30 bytes; the GPS IFD follows at 38.
    tiff.extend_from_slice(&2u16.to_le_bytes());
    entry(&mut tiff, 0x0112, 3, 1, [6, 0, 0, 0]);
    entry(&mut tiff, 0x8825, 4, 1, 38u32.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    // GPS IFD at 38: 4 entries → 2 + 48 + 4 = 54 bytes; its rationals follow at 92 and 116.
    tiff.extend_from_slice(&4u16.to_le_bytes());
    entry(&mut tiff, 0x0001, 2, 2, [b'N', 0, 0, 0]);
    entry(&mut tiff, 0x0002, 5, 3, 92u32.to_le_bytes());
    entry(&mut tiff, 0x0003, 2, 2, [b'E', 0, 0, 0]);
    entry(&mut tiff, 0x0004, 5, 3, 116u32.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    for (degrees, minutes) in [(52u32, 31u32), (13, 24)] {
        for (numerator, denominator) in [(degrees, 1u32), (minutes, 1), (0, 1)] {
            tiff.extend_from_slice(&numerator.to_le_bytes());
            tiff.extend_from_slice(&denominator.to_le_bytes());
        }
    }
    tiff
}

/// A JPEG stored 400 × 200 — left half red, right half blue — with EXIF Orientation = 6
/// (display rotated 90° clockwise: upright it is 200 × 400, red on top) and GPS tags.
pub fn rotated_jpeg_with_gps() -> Vec<u8> {
    let (w, h) = STORED;
    let image = RgbImage::from_fn(w, h, |x, _| if x < w / 2 { Rgb([220, 20, 30]) } else { Rgb([20, 40, 220]) });
    let mut out = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
    encoder.set_exif_metadata(exif_orientation_6_with_gps()).expect("exif");
    encoder.write_image(image.as_raw(), w, h, image::ExtendedColorType::Rgb8).expect("jpeg");
    out
}

/// A 300 × 150 PNG (green).
pub fn png() -> Vec<u8> {
    let image = RgbImage::from_fn(300, 150, |_, _| Rgb([30, 200, 60]));
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).expect("png");
    out.into_inner()
}

/// A PNG whose header claims 60000 × 60000 pixels, with almost no data.
pub fn png_bomb() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = 0xFFFF_FFFFu32;
        for &b in kind.iter().chain(data) {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        out.extend_from_slice(&(!crc).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&60_000u32.to_be_bytes());
    ihdr.extend_from_slice(&60_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// True when `bytes` carry an EXIF block or the fixture's GPS values.
pub fn has_metadata(bytes: &[u8]) -> bool {
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    contains(b"Exif") || contains(b"II\x2a\x00") || contains(b"MM\x00\x2a")
}

#[test]
fn the_committed_fixture_is_the_generated_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/media/fixtures/rotated-gps.jpg");
    let generated = rotated_jpeg_with_gps();
    if std::env::var("BFF_WRITE_FIXTURES").is_ok_and(|v| v == "1") {
        std::fs::write(path, &generated).expect("write fixture");
    }
    let committed = std::fs::read(path).expect("fixture (regenerate with BFF_WRITE_FIXTURES=1)");
    assert_eq!(committed, generated, "regenerate with BFF_WRITE_FIXTURES=1");
    assert!(has_metadata(&committed), "the fixture carries EXIF");
    let mut decoder =
        image::ImageReader::with_format(Cursor::new(&committed), ImageFormat::Jpeg).into_decoder().expect("decoder");
    use image::ImageDecoder;
    assert_eq!(decoder.orientation().expect("orientation"), image::metadata::Orientation::Rotate90);
}
