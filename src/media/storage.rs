//! Object storage behind one trait ([`Storage`]) and its local-directory implementation
//! ([`LocalStorage`], the embedded default, under `data_dir/media`).
//!
//! Two kinds of things are stored. **Staged parts** are the chunks of a resumable upload, each
//! written once by one request under a name no other request uses; a part counts only once the
//! database has committed it (see `uploads`), so a half-written part is never read.
//! **Objects** (an upload's assembled original, its variants) are written atomically: to a
//! temporary file, fsync'd, renamed into place and the directory fsync'd — a reader sees the
//! whole object or none, and an acknowledged object survives a crash.

use std::{
    io,
    path::{Path, PathBuf},
};

use bytes::Bytes;
use futures_util::{future::BoxFuture, stream::BoxStream};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// A part being written; durable only after [`PartWriter::finish`].
pub trait PartWriter: Send {
    /// Appends `bytes`.
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, io::Result<()>>;
    /// Flushes and fsyncs the part; returns its length.
    fn finish(self: Box<Self>) -> BoxFuture<'static, io::Result<u64>>;
}

/// An assembled object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assembled {
    /// Its length in bytes.
    pub bytes: u64,
    /// SHA-256 of its content, lowercase hex.
    pub sha256: String,
}

/// Where media bytes live.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// `local` (later `s3`).
    fn kind(&self) -> &'static str;
    /// Starts staged part `part` of upload `upload`.
    fn stage_part<'a>(&'a self, upload: &'a str, part: &'a str) -> BoxFuture<'a, io::Result<Box<dyn PartWriter>>>;
    /// Deletes one staged part (refused or not committed); missing is fine.
    fn discard_part<'a>(&'a self, upload: &'a str, part: &'a str) -> BoxFuture<'a, io::Result<()>>;
    /// Deletes every staged part of `upload`; missing is fine.
    fn discard_upload<'a>(&'a self, upload: &'a str) -> BoxFuture<'a, io::Result<()>>;
    /// Concatenates `parts` of `upload`, in order, into object `key` (atomic, durable on return).
    fn assemble<'a>(
        &'a self,
        upload: &'a str,
        parts: &'a [String],
        key: &'a str,
    ) -> BoxFuture<'a, io::Result<Assembled>>;
    /// Writes object `key` (atomic, durable on return).
    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> BoxFuture<'a, io::Result<()>>;
    /// Reads object `key` whole, refusing objects larger than `max` bytes; `None` when absent.
    fn get<'a>(&'a self, key: &'a str, max: u64) -> BoxFuture<'a, io::Result<Option<Vec<u8>>>>;
    /// The length of object `key`; `None` when absent.
    fn stat<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<Option<u64>>>;
    /// `len` bytes of object `key` from `start`, streamed.
    fn read_range<'a>(
        &'a self,
        key: &'a str,
        start: u64,
        len: u64,
    ) -> BoxFuture<'a, io::Result<BoxStream<'static, io::Result<Bytes>>>>;
    /// Deletes object `key`; missing is fine.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<()>>;
}

/// True for keys and names made of `[A-Za-z0-9._-]` segments joined by `/`, none of them
/// `.`/`..` or empty: nothing outside the storage root can be named.
pub fn safe_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 200
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("unsafe storage name {what:?}"))
}

/// Objects and staged parts in a directory: `objects/<key>`, `parts/<upload>/<part>`, and
/// `tmp/` for objects being written.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    /// Storage under `root` (created, with its subdirectories).
    pub fn open(root: &Path) -> io::Result<Self> {
        for sub in ["objects", "parts", "tmp"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        Ok(Self { root: root.to_path_buf() })
    }

    fn object(&self, key: &str) -> io::Result<PathBuf> {
        if !safe_key(key) {
            return Err(invalid(key));
        }
        Ok(self.root.join("objects").join(key))
    }

    fn upload_dir(&self, upload: &str) -> io::Result<PathBuf> {
        if !safe_key(upload) || upload.contains('/') {
            return Err(invalid(upload));
        }
        Ok(self.root.join("parts").join(upload))
    }

    fn part(&self, upload: &str, part: &str) -> io::Result<PathBuf> {
        if !safe_key(part) || part.contains('/') {
            return Err(invalid(part));
        }
        Ok(self.upload_dir(upload)?.join(part))
    }

    fn temp(&self) -> PathBuf {
        self.root.join("tmp").join(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Writes `temp` (already fsync'd) into place at `path` and makes the rename durable.
    async fn publish(temp: &Path, path: &Path) -> io::Result<()> {
        let parent = path.parent().ok_or_else(|| invalid("object path"))?;
        tokio::fs::create_dir_all(parent).await?;
        tokio::fs::rename(temp, path).await?;
        sync_dir(parent).await
    }
}

/// fsync of a directory (makes a rename or a new entry in it durable).
async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
}

struct LocalPart {
    file: tokio::fs::File,
    written: u64,
}

impl PartWriter for LocalPart {
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.file.write_all(bytes).await?;
            self.written += bytes.len() as u64;
            Ok(())
        })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, io::Result<u64>> {
        Box::pin(async move {
            let mut file = self.file;
            file.flush().await?;
            file.sync_all().await?;
            Ok(self.written)
        })
    }
}

impl Storage for LocalStorage {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn stage_part<'a>(&'a self, upload: &'a str, part: &'a str) -> BoxFuture<'a, io::Result<Box<dyn PartWriter>>> {
        Box::pin(async move {
            let dir = self.upload_dir(upload)?;
            let path = self.part(upload, part)?;
            tokio::fs::create_dir_all(&dir).await?;
            let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await?;
            sync_dir(&dir).await?;
            Ok(Box::new(LocalPart { file, written: 0 }) as Box<dyn PartWriter>)
        })
    }

    fn discard_part<'a>(&'a self, upload: &'a str, part: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move { ignore_missing(tokio::fs::remove_file(self.part(upload, part)?).await) })
    }

    fn discard_upload<'a>(&'a self, upload: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move { ignore_missing(tokio::fs::remove_dir_all(self.upload_dir(upload)?).await) })
    }

    fn assemble<'a>(
        &'a self,
        upload: &'a str,
        parts: &'a [String],
        key: &'a str,
    ) -> BoxFuture<'a, io::Result<Assembled>> {
        Box::pin(async move {
            let path = self.object(key)?;
            let temp = self.temp();
            let mut out = tokio::fs::File::create(&temp).await?;
            let mut hash = Sha256::new();
            let mut bytes = 0u64;
            let mut buffer = vec![0u8; 256 * 1024];
            let written: io::Result<()> = async {
                for part in parts {
                    let mut input = tokio::fs::File::open(self.part(upload, part)?).await?;
                    loop {
                        let n = input.read(&mut buffer).await?;
                        if n == 0 {
                            break;
                        }
                        let chunk = buffer.get(..n).unwrap_or_default();
                        hash.update(chunk);
                        out.write_all(chunk).await?;
                        bytes += n as u64;
                    }
                }
                out.flush().await?;
                out.sync_all().await
            }
            .await;
            if let Err(err) = written {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(err);
            }
            drop(out);
            Self::publish(&temp, &path).await?;
            Ok(Assembled { bytes, sha256: hex::encode(hash.finalize()) })
        })
    }

    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let path = self.object(key)?;
            let temp = self.temp();
            let written: io::Result<()> = async {
                let mut out = tokio::fs::File::create(&temp).await?;
                out.write_all(bytes).await?;
                out.flush().await?;
                out.sync_all().await
            }
            .await;
            if let Err(err) = written {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(err);
            }
            Self::publish(&temp, &path).await
        })
    }

    fn get<'a>(&'a self, key: &'a str, max: u64) -> BoxFuture<'a, io::Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            let path = self.object(key)?;
            let file = match tokio::fs::File::open(&path).await {
                Ok(file) => file,
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(err) => return Err(err),
            };
            let len = file.metadata().await?.len();
            if len > max {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("object is {len} bytes, over {max}")));
            }
            let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            file.take(max).read_to_end(&mut bytes).await?;
            Ok(Some(bytes))
        })
    }

    fn stat<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<Option<u64>>> {
        Box::pin(async move {
            match tokio::fs::metadata(self.object(key)?).await {
                Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
                Ok(_) => Ok(None),
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(err),
            }
        })
    }

    fn read_range<'a>(
        &'a self,
        key: &'a str,
        start: u64,
        len: u64,
    ) -> BoxFuture<'a, io::Result<BoxStream<'static, io::Result<Bytes>>>> {
        Box::pin(async move {
            let mut file = tokio::fs::File::open(self.object(key)?).await?;
            file.seek(io::SeekFrom::Start(start)).await?;
            let stream = async_stream::try_stream! {
                let mut left = len;
                let mut buffer = vec![0u8; 64 * 1024];
                while left > 0 {
                    let want = usize::try_from(left.min(buffer.len() as u64)).unwrap_or(buffer.len());
                    let n = file.read(buffer.get_mut(..want).unwrap_or_default()).await?;
                    if n == 0 {
                        Err(io::Error::new(io::ErrorKind::UnexpectedEof, "object shorter than its length"))?;
                    }
                    left -= n as u64;
                    yield Bytes::copy_from_slice(buffer.get(..n).unwrap_or_default());
                }
            };
            Ok(Box::pin(stream) as BoxStream<'static, io::Result<Bytes>>)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move { ignore_missing(tokio::fs::remove_file(self.object(key)?).await) })
    }
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parts_assemble_into_an_atomic_object() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = LocalStorage::open(dir.path()).expect("open");
        for (name, bytes) in [("a", b"hello ".as_slice()), ("b", b"world".as_slice())] {
            let mut part = storage.stage_part("up1", name).await.expect("stage");
            part.write(bytes).await.expect("write");
            assert_eq!(part.finish().await.expect("finish"), bytes.len() as u64);
        }
        let parts = vec!["a".to_owned(), "b".to_owned()];
        let assembled = storage.assemble("up1", &parts, "originals/up1").await.expect("assemble");
        assert_eq!(assembled.bytes, 11);
        assert_eq!(assembled.sha256, hex::encode(Sha256::digest(b"hello world")));
        assert_eq!(storage.get("originals/up1", 100).await.expect("get").as_deref(), Some(b"hello world".as_slice()));
        assert!(storage.get("originals/up1", 5).await.is_err(), "larger than max is refused");
        assert!(std::fs::read_dir(dir.path().join("tmp")).expect("tmp").next().is_none(), "no temp file left");
        storage.discard_upload("up1").await.expect("discard");
        assert!(!dir.path().join("parts/up1").exists());

        use futures_util::TryStreamExt;
        let range: Vec<Bytes> =
            storage.read_range("originals/up1", 6, 5).await.expect("range").try_collect().await.expect("read");
        assert_eq!(range.concat(), b"world");
        assert_eq!(storage.stat("originals/up1").await.expect("stat"), Some(11));
        assert_eq!(storage.stat("originals/none").await.expect("stat"), None);
    }

    #[test]
    fn names_cannot_leave_the_root() {
        for bad in ["", "../x", "a/../../b", "/etc/passwd", "a//b", "a/./b", "a b", "a\\b"] {
            assert!(!safe_key(bad), "{bad:?}");
        }
        for good in ["originals/abc", "v/0123abcd/640.webp", "x-y_z.1"] {
            assert!(safe_key(good), "{good:?}");
        }
    }
}
