//! SeaORM entities of the media concern, mirroring `migrations/`: media objects (one per
//! upload), the committed parts of resumable uploads, and posts' references to media objects.

pub mod media_object;
pub mod post_media;
pub mod upload_part;
