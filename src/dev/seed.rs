//! The deterministic demo dataset: users with follows, posts with links and media
//! references, comments and reactions.
//!
//! The same `users` count always produces the same rows (a fixed ChaCha seed and fixed
//! timestamps), so the playground, tests and benchmarks see identical data on every machine.
//! Rows are written with explicit ids in multi-row inserts inside one transaction, which
//! seeds 10k users (about a million rows) in seconds on SQLite.

use std::collections::HashSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseBackend, EntityTrait, PaginatorTrait, Statement,
};

use crate::{
    kernel::db::Db,
    messaging::entities::{conversation, conversation_member, message},
    social::entities::{comment, follow, post, post_media, reaction, user},
};
use crate::{kernel::error::DomainError, social::interactions::REACTION_KINDS};

/// Rows per multi-row INSERT (below SQLite's and PostgreSQL's bound-parameter limits).
const CHUNK: usize = 1_000;

/// What was seeded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Users created.
    pub users: usize,
    /// Follow edges created.
    pub follows: usize,
    /// Posts created.
    pub posts: usize,
    /// Media references created.
    pub media: usize,
    /// Comments created.
    pub comments: usize,
    /// Reactions created.
    pub reactions: usize,
    /// Conversations created (direct ones of the first user, and one group).
    pub conversations: usize,
    /// Messages created.
    pub messages: usize,
    /// True when the database already had users and nothing was written.
    pub skipped: bool,
}

const FIRST_NAMES: [&str; 24] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia",
    "peggy", "rupert", "sybil", "trent", "uma", "victor", "walter", "xena", "yusuf", "zoe", "mia",
];

const WORDS: [&str; 32] = [
    "coffee", "sunrise", "release", "weekend", "hiking", "swift", "kotlin", "flutter", "offline", "sync", "tunnel",
    "battery", "cache", "latency", "photo", "city", "rain", "launch", "bug", "fix", "design", "review", "train",
    "beach", "garden", "music", "book", "recipe", "team", "deploy", "push", "sketch",
];

const BLURHASHES: [&str; 4] = [
    "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
    "LKO2?U%2Tw=w]~RBVZRi};RPxuwH",
    "L6PZfSi_.AyE_3t7t7R**0o#DgR4",
    "LGF5?xYk^6#M@-5c,1J5@[or[Q6.",
];

const SIZES: [(i32, i32); 4] = [(1080, 1080), (1080, 1350), (1920, 1080), (1080, 1920)];

/// The timestamp all seeded activity is relative to.
fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default()
}

fn sentence(rng: &mut ChaCha8Rng, words: usize) -> String {
    let mut out = Vec::with_capacity(words);
    for _ in 0..words {
        out.push(WORDS[rng.random_range(0..WORDS.len())]);
    }
    let mut text = out.join(" ");
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    text.push('.');
    text
}

/// The handle of the `i`-th seeded user (0-based): `alice`, `bob`, ... then `alice_24`, ...
pub fn handle_of(i: usize) -> String {
    if i < FIRST_NAMES.len() {
        FIRST_NAMES[i].to_owned()
    } else {
        format!("{}_{i}", FIRST_NAMES[i % FIRST_NAMES.len()])
    }
}

/// Seeds `users` users and their activity, unless the database already has users.
pub async fn seed(db: &Db, users: usize) -> Result<SeedReport, DomainError> {
    if users == 0 {
        return Err(DomainError::invalid("seed needs at least one user"));
    }
    if user::Entity::find().count(db.conn()).await? > 0 {
        return Ok(SeedReport { skipped: true, ..SeedReport::default() });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x6d6f_6269_6c65);
    let mut report = SeedReport { users, ..SeedReport::default() };
    let tx = db.begin_write().await?;
    let conn = &*tx;
    let base = epoch();

    // Users.
    let user_rows: Vec<user::ActiveModel> = (0..users)
        .map(|i| {
            let handle = handle_of(i);
            let name = FIRST_NAMES[i % FIRST_NAMES.len()];
            user::ActiveModel {
                id: Set(i as i64 + 1),
                display_name: Set(format!("{}{}", name[..1].to_ascii_uppercase(), &name[1..])),
                bio: Set(format!("Hi, I'm {name}. I post about {} and {}.", WORDS[i % 32], WORDS[(i * 7 + 3) % 32])),
                avatar_key: Set(Some(format!("avatars/{handle}.jpg"))),
                created_at: Set(base + Duration::minutes(i as i64)),
                handle: Set(handle),
            }
        })
        .collect();
    insert_chunks(conn, user_rows).await?;

    // Follows: everyone follows up to 20 others; the first users follow each other.
    let mut follow_rows = Vec::new();
    for follower in 0..users {
        let wanted = 20.min(users - 1);
        let mut picked = HashSet::with_capacity(wanted);
        for close in 0..5.min(users) {
            if close != follower && picked.len() < wanted {
                picked.insert(close);
            }
        }
        while picked.len() < wanted {
            let candidate = rng.random_range(0..users);
            if candidate != follower {
                picked.insert(candidate);
            }
        }
        let mut picked: Vec<usize> = picked.into_iter().collect();
        picked.sort_unstable();
        for (n, followee) in picked.into_iter().enumerate() {
            follow_rows.push(follow::ActiveModel {
                follower_id: Set(follower as i64 + 1),
                followee_id: Set(followee as i64 + 1),
                created_at: Set(base + Duration::days(1) + Duration::minutes((follower * 20 + n) as i64)),
            });
        }
    }
    report.follows = follow_rows.len();
    insert_chunks(conn, follow_rows).await?;

    // Posts: 2 to 8 per user over 60 days, inserted in time order so ids follow time.
    let mut planned: Vec<(DateTime<Utc>, usize)> = Vec::new();
    for author in 0..users {
        for _ in 0..rng.random_range(2..=8) {
            let at = base + Duration::days(2) + Duration::seconds(rng.random_range(0..60 * 86_400));
            planned.push((at, author));
        }
    }
    planned.sort();
    let mut post_rows = Vec::with_capacity(planned.len());
    let mut media_rows = Vec::new();
    let mut comment_rows = Vec::new();
    let mut reaction_rows = Vec::new();
    let mut comment_times = Vec::new();
    for (index, (at, author)) in planned.iter().enumerate() {
        let post_id = index as i64 + 1;
        let links = if rng.random_bool(0.3) {
            vec![format!("https://example.com/articles/{}", rng.random_range(1..10_000))]
        } else {
            Vec::new()
        };
        post_rows.push(post::ActiveModel {
            id: Set(post_id),
            author_id: Set(*author as i64 + 1),
            body: Set({
                let words = rng.random_range(4..24);
                sentence(&mut rng, words)
            }),
            links: Set(serde_json::to_value(links)?),
            created_at: Set(*at),
            updated_at: Set(*at),
            deleted_at: Set(None),
        });
        if rng.random_bool(0.4) {
            for position in 0..rng.random_range(1..=3) {
                let (width, height) = SIZES[rng.random_range(0..SIZES.len())];
                media_rows.push(post_media::ActiveModel {
                    id: Set(media_rows.len() as i64 + 1),
                    post_id: Set(post_id),
                    position: Set(position),
                    storage_key: Set(format!("seed/{post_id}/{position}.jpg")),
                    mime_type: Set("image/jpeg".to_owned()),
                    width: Set(width),
                    height: Set(height),
                    blurhash: Set(BLURHASHES[rng.random_range(0..BLURHASHES.len())].to_owned()),
                    alt_text: Set(None),
                    media_id: Set(None),
                    status: Set("ready".to_owned()),
                    dominant_color: Set(None),
                    variants: Set(None),
                });
            }
        }
        for _ in 0..rng.random_range(0..=6) {
            let commenter = rng.random_range(0..users) as i64 + 1;
            let when = *at + Duration::seconds(rng.random_range(60..86_400));
            comment_times.push((when, post_id, commenter));
        }
        let wanted = rng.random_range(0..=10usize).min(users);
        let mut reactors = Vec::with_capacity(wanted);
        while reactors.len() < wanted {
            let candidate = rng.random_range(0..users);
            if !reactors.contains(&candidate) {
                reactors.push(candidate);
            }
        }
        for reactor in reactors {
            reaction_rows.push(reaction::ActiveModel {
                post_id: Set(post_id),
                user_id: Set(reactor as i64 + 1),
                kind: Set(REACTION_KINDS[rng.random_range(0..REACTION_KINDS.len())].to_owned()),
                created_at: Set(*at + Duration::seconds(rng.random_range(1..86_400))),
            });
        }
    }
    comment_times.sort();
    for (index, (when, post_id, commenter)) in comment_times.into_iter().enumerate() {
        comment_rows.push(comment::ActiveModel {
            id: Set(index as i64 + 1),
            post_id: Set(post_id),
            author_id: Set(commenter),
            body: Set({
                let words = rng.random_range(2..12);
                sentence(&mut rng, words)
            }),
            created_at: Set(when),
            deleted_at: Set(None),
        });
    }
    report.posts = post_rows.len();
    report.media = media_rows.len();
    report.comments = comment_rows.len();
    report.reactions = reaction_rows.len();
    insert_chunks(conn, post_rows).await?;
    insert_chunks(conn, media_rows).await?;
    insert_chunks(conn, comment_rows).await?;
    insert_chunks(conn, reaction_rows).await?;
    seed_conversations(conn, &mut rng, users, base, &mut report).await?;
    if conn.get_database_backend() == DatabaseBackend::Postgres {
        // Explicit ids do not advance PostgreSQL sequences: move them past the seeded rows.
        for table in ["users", "posts", "post_media", "comments", "conversations", "messages"] {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            );
            conn.execute_raw(Statement::from_string(DatabaseBackend::Postgres, sql)).await?;
        }
    }
    tx.commit().await?;
    Ok(report)
}

/// Direct conversations of the first user with the next four, and a group of the first five,
/// each with a short history (read up to the middle).
async fn seed_conversations(
    conn: &impl ConnectionTrait,
    rng: &mut ChaCha8Rng,
    users: usize,
    base: DateTime<Utc>,
    report: &mut SeedReport,
) -> Result<(), DomainError> {
    if users < 2 {
        return Ok(());
    }
    let others = 4.min(users - 1);
    let mut plans: Vec<(Option<String>, Vec<i64>)> = (0..others).map(|i| (None, vec![1, i as i64 + 2])).collect();
    if users >= 3 {
        plans.push((Some("Weekend plans".to_owned()), (1..=5.min(users) as i64).collect()));
    }
    let (mut conversations, mut members, mut messages) = (Vec::new(), Vec::new(), Vec::new());
    for (index, (title, people)) in plans.into_iter().enumerate() {
        let id = index as i64 + 1;
        let created = base + Duration::days(3) + Duration::hours(id);
        let count = rng.random_range(4..=12i64);
        for seq in 1..=count {
            let sender = people[rng.random_range(0..people.len())];
            messages.push(message::ActiveModel {
                id: Set(messages.len() as i64 + 1),
                conversation_id: Set(id),
                seq: Set(seq),
                sender_id: Set(sender),
                body: Set({
                    let words = rng.random_range(2..14);
                    sentence(rng, words)
                }),
                client_message_id: Set(format!("seed-{id}-{seq}")),
                created_at: Set(created + Duration::minutes(seq * 7)),
            });
        }
        for &user_id in &people {
            members.push(conversation_member::ActiveModel {
                conversation_id: Set(id),
                user_id: Set(user_id),
                joined_at: Set(created),
                last_read_seq: Set(count / 2),
            });
        }
        conversations.push(conversation::ActiveModel {
            id: Set(id),
            kind: Set(if title.is_some() { "group" } else { "direct" }.to_owned()),
            direct_key: Set(if title.is_some() { None } else { Some(format!("{}:{}", people[0], people[1])) }),
            title: Set(title),
            created_by: Set(1),
            created_at: Set(created),
            last_seq: Set(count),
            last_activity_at: Set(created + Duration::minutes(count * 7)),
        });
    }
    report.conversations = conversations.len();
    report.messages = messages.len();
    insert_chunks(conn, conversations).await?;
    insert_chunks(conn, members).await?;
    insert_chunks(conn, messages).await?;
    Ok(())
}

async fn insert_chunks<A>(conn: &impl ConnectionTrait, rows: Vec<A>) -> Result<(), DomainError>
where
    A: ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(CHUNK).collect();
        <A::Entity as EntityTrait>::insert_many(chunk).exec_without_returning(conn).await?;
    }
    Ok(())
}
