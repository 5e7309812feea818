//! The image pipeline, as a pure function of the uploaded bytes: sniff the type from the bytes
//! (never the name or the declared type), decode within limits (dimensions and pixel count
//! checked from the header before any pixel is decoded, decoder memory capped), apply the EXIF
//! orientation, compute the BlurHash and dominant colour of the upright image, and encode the
//! width ladder in JPEG and lossy WebP. Every encoded variant is a fresh encode of decoded
//! pixels, so no EXIF, GPS, XMP or ICC metadata of the upload reaches a served file.
//! Transparency is flattened onto white (JPEG has no alpha).

use std::io::Cursor;

use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer, images::Image};
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, metadata::Orientation};

use crate::media::{
    settings::MediaSettings,
    variants::{Step, widths},
};

/// What the bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// An image format this server decodes.
    Image(ImageFormat),
    /// An image container it cannot decode (HEIC/HEIF, AVIF): its MIME type.
    UndecodableImage(&'static str),
    /// A video container: its MIME type.
    Video(&'static str),
    /// Anything else.
    Unknown,
}

/// Sniffs the type of `bytes` from their first bytes.
pub fn sniff(bytes: &[u8]) -> Sniffed {
    if let Some(brand) = bytes.get(4..12).filter(|b| b.starts_with(b"ftyp")).and_then(|b| b.get(4..8)) {
        return match brand {
            b"heic" | b"heix" | b"heim" | b"heis" | b"mif1" | b"msf1" => Sniffed::UndecodableImage("image/heic"),
            b"avif" | b"avis" => Sniffed::UndecodableImage("image/avif"),
            b"qt  " => Sniffed::Video("video/quicktime"),
            _ => Sniffed::Video("video/mp4"),
        };
    }
    if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Sniffed::Video("video/webm");
    }
    match image::guess_format(bytes) {
        Ok(format @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP)) => {
            Sniffed::Image(format)
        }
        _ => Sniffed::Unknown,
    }
}

/// Why processing failed, with its public reason code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The bytes are no type this server handles, or not the kind that was declared.
    #[error("{0}")]
    UnsupportedType(String),
    /// Dimensions, pixel count or decoder memory over the limits (decompression bombs).
    #[error("{0}")]
    LimitsExceeded(String),
    /// The file is damaged or truncated.
    #[error("{0}")]
    Corrupt(String),
    /// This kind cannot be processed on this server (video without ffmpeg).
    #[error("{0}")]
    ProcessingUnavailable(String),
}

impl Failure {
    /// The reason code (`MediaFailureReason`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedType(_) => "UNSUPPORTED_TYPE",
            Self::LimitsExceeded(_) => "LIMITS_EXCEEDED",
            Self::Corrupt(_) => "CORRUPT",
            Self::ProcessingUnavailable(_) => "PROCESSING_UNAVAILABLE",
        }
    }
}

/// One encoded width of the ladder.
pub struct Variant {
    /// Its size and byte counts.
    pub step: Step,
    /// The JPEG.
    pub jpeg: Vec<u8>,
    /// The WebP.
    pub webp: Vec<u8>,
}

/// A processed image.
pub struct Rendered {
    /// The type the bytes really are.
    pub mime_type: &'static str,
    /// Upright width.
    pub width: u32,
    /// Upright height.
    pub height: u32,
    /// BlurHash (4×3 components) of the upright image.
    pub blurhash: String,
    /// `#rrggbb`: the most common colour, quantised.
    pub dominant_color: String,
    /// The ladder, narrowest first.
    pub variants: Vec<Variant>,
}

fn mime_of(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "image/png",
        ImageFormat::Gif => "image/gif",
        ImageFormat::WebP => "image/webp",
        _ => "image/jpeg",
    }
}

fn decode_failure(err: ImageError) -> Failure {
    match err {
        ImageError::Limits(limit) => {
            Failure::LimitsExceeded(format!("the image needs more than the decoder may use: {limit}"))
        }
        ImageError::Unsupported(why) => Failure::UnsupportedType(format!("unsupported image: {why}")),
        other => Failure::Corrupt(format!("the image cannot be decoded: {other}")),
    }
}

/// Decodes `bytes` (a sniffed image) upright, within `settings`' limits.
pub fn decode(bytes: &[u8], format: ImageFormat, settings: &MediaSettings) -> Result<DynamicImage, Failure> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(settings.max_decode_bytes);
    reader.limits(limits.clone());
    // The header is read first: dimensions are checked before a pixel is decoded.
    let mut decoder = reader.into_decoder().map_err(decode_failure)?;
    let (width, height) = decoder.dimensions();
    if width > settings.max_dimension || height > settings.max_dimension {
        return Err(Failure::LimitsExceeded(format!(
            "the image is {width}×{height} pixels; its sides may be at most {} pixels",
            settings.max_dimension
        )));
    }
    limits.max_image_width = Some(settings.max_dimension);
    limits.max_image_height = Some(settings.max_dimension);
    decoder.set_limits(limits).map_err(decode_failure)?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > settings.max_pixels {
        return Err(Failure::LimitsExceeded(format!(
            "the image is {width}×{height} = {pixels} pixels; at most {} are decoded",
            settings.max_pixels
        )));
    }
    if width == 0 || height == 0 {
        return Err(Failure::Corrupt("the image has no pixels".into()));
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_failure)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// RGB pixels of `image` with any transparency composited onto white.
fn flatten(image: &DynamicImage) -> Vec<u8> {
    if !image.color().has_alpha() {
        return image.to_rgb8().into_raw();
    }
    let rgba = image.to_rgba8();
    let mut rgb = Vec::with_capacity(rgba.len() / 4 * 3);
    for px in rgba.chunks_exact(4) {
        let (r, g, b, a) = (u32::from(px[0]), u32::from(px[1]), u32::from(px[2]), u32::from(px[3]));
        for c in [r, g, b] {
            rgb.push(((c * a + 255 * (255 - a)) / 255) as u8);
        }
    }
    rgb
}

fn resize(rgb: &[u8], width: u32, height: u32, to_width: u32, to_height: u32) -> Result<Vec<u8>, Failure> {
    let internal = |e: &dyn std::fmt::Display| Failure::Corrupt(format!("resizing failed: {e}"));
    let src = Image::from_vec_u8(width, height, rgb.to_vec(), PixelType::U8x3).map_err(|e| internal(&e))?;
    let mut dst = Image::new(to_width, to_height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new().resize(&src, &mut dst, &options).map_err(|e| internal(&e))?;
    Ok(dst.into_vec())
}

fn encode_jpeg(rgb: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| Failure::Corrupt(format!("JPEG encoding failed: {e}")))?;
    Ok(out)
}

fn encode_webp(rgb: &[u8], width: u32, height: u32, quality: u8) -> Vec<u8> {
    webp::Encoder::from_rgb(rgb, width, height).encode(f32::from(quality)).to_vec()
}

/// The most common colour of `rgb` (4 bits per channel buckets, averaged within the winner).
fn dominant_color(rgb: &[u8]) -> String {
    let mut buckets = vec![(0u32, [0u64; 3]); 4096];
    for px in rgb.chunks_exact(3) {
        let index = (usize::from(px[0] >> 4) << 8) | (usize::from(px[1] >> 4) << 4) | usize::from(px[2] >> 4);
        if let Some((count, sums)) = buckets.get_mut(index) {
            *count += 1;
            for (sum, &c) in sums.iter_mut().zip(px) {
                *sum += u64::from(c);
            }
        }
    }
    let (count, sums) = buckets.into_iter().max_by_key(|(count, _)| *count).unwrap_or_default();
    let count = u64::from(count.max(1));
    format!("#{:02x}{:02x}{:02x}", sums[0] / count, sums[1] / count, sums[2] / count)
}

/// Processes an image upload into its facts and ladder.
pub fn process_image(bytes: &[u8], settings: &MediaSettings) -> Result<Rendered, Failure> {
    let format = match sniff(bytes) {
        Sniffed::Image(format) => format,
        Sniffed::UndecodableImage(mime) => {
            return Err(Failure::UnsupportedType(format!("{mime} images cannot be decoded on this server")));
        }
        Sniffed::Video(mime) => {
            return Err(Failure::UnsupportedType(format!("declared an image, but the bytes are {mime}")));
        }
        Sniffed::Unknown => {
            return Err(Failure::UnsupportedType("the bytes are not an image this server reads".into()));
        }
    };
    let image = decode(bytes, format, settings)?;
    let (width, height) = (image.width(), image.height());
    let rgb = flatten(&image);
    drop(image);
    // Placeholder and colour from a small copy: the same result, a fraction of the work.
    let thumb_w = width.min(64);
    let thumb_h = ((u64::from(height) * u64::from(thumb_w)) / u64::from(width)).clamp(1, 64) as u32;
    let thumb = resize(&rgb, width, height, thumb_w, thumb_h)?;
    let thumb_rgba: Vec<u8> = thumb.chunks_exact(3).flat_map(|px| [px[0], px[1], px[2], 255]).collect();
    let (cx, cy) = if width >= height { (4, 3) } else { (3, 4) };
    let blurhash = blurhash::encode(cx, cy, thumb_w, thumb_h, &thumb_rgba)
        .map_err(|e| Failure::Corrupt(format!("BlurHash failed: {e}")))?;
    let dominant_color = dominant_color(&thumb);
    let mut variants = Vec::new();
    for to_width in widths(&settings.ladder, width) {
        let to_height =
            ((u64::from(height) * u64::from(to_width) + u64::from(width) / 2) / u64::from(width)).max(1) as u32;
        let pixels = if to_width == width { rgb.clone() } else { resize(&rgb, width, height, to_width, to_height)? };
        let to_height = if to_width == width { height } else { to_height };
        let jpeg = encode_jpeg(&pixels, to_width, to_height, settings.jpeg_quality)?;
        let webp = encode_webp(&pixels, to_width, to_height, settings.webp_quality);
        let step =
            Step { width: to_width, height: to_height, jpeg_bytes: jpeg.len() as u64, webp_bytes: webp.len() as u64 };
        variants.push(Variant { step, jpeg, webp });
    }
    Ok(Rendered { mime_type: mime_of(format), width, height, blurhash, dominant_color, variants })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, _| image::Rgb([(x % 256) as u8, 80, 160]));
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).expect("png");
        out.into_inner()
    }

    #[test]
    fn a_png_is_sniffed_by_its_bytes_and_laddered_without_upscaling() {
        let settings = MediaSettings::default();
        let rendered = process_image(&png(700, 350), &settings).expect("processed");
        assert_eq!(rendered.mime_type, "image/png");
        assert_eq!((rendered.width, rendered.height), (700, 350));
        let widths: Vec<u32> = rendered.variants.iter().map(|v| v.step.width).collect();
        assert_eq!(widths, vec![160, 320, 640, 700]);
        for variant in &rendered.variants {
            let jpeg = image::load_from_memory_with_format(&variant.jpeg, ImageFormat::Jpeg).expect("jpeg decodes");
            assert_eq!((jpeg.width(), jpeg.height()), (variant.step.width, variant.step.height));
            assert_eq!(sniff(&variant.webp), Sniffed::Image(ImageFormat::WebP));
        }
        assert_eq!(rendered.blurhash.len(), 28, "4×3 components: {}", rendered.blurhash);
        assert!(rendered.dominant_color.starts_with('#') && rendered.dominant_color.len() == 7);
    }

    #[test]
    fn a_decompression_bomb_fails_before_decoding() {
        // A valid PNG header claiming 60000×60000 pixels (3.6 gigapixels).
        let mut settings = MediaSettings { max_dimension: 100_000, ..Default::default() };
        let bomb = crate::media::process::tests::png_header(60_000, 60_000);
        match process_image(&bomb, &settings) {
            Err(Failure::LimitsExceeded(why)) => assert!(why.contains("pixels"), "{why}"),
            other => panic!("{:?}", other.map(|r| r.width)),
        }
        settings.max_dimension = 10_000;
        assert!(matches!(process_image(&bomb, &settings), Err(Failure::LimitsExceeded(_))));
    }

    /// A PNG with a valid IHDR of `width`×`height` and one tiny IDAT.
    pub fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn what_is_not_an_image_is_refused_with_a_reason() {
        let settings = MediaSettings::default();
        assert!(matches!(process_image(b"hello, not an image", &settings), Err(Failure::UnsupportedType(_))));
        let mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2";
        assert_eq!(sniff(mp4), Sniffed::Video("video/mp4"));
        assert!(matches!(process_image(mp4, &settings), Err(Failure::UnsupportedType(_))));
        let mut truncated = png(50, 50);
        truncated.truncate(60);
        assert!(matches!(process_image(&truncated, &settings), Err(Failure::Corrupt(_))));
    }
}
