//! The embedded store: SQLite through rusqlite, written on a thread of its own.
//!
//! One worker thread owns the connection that writes. Callers send it
//! closures; it runs every closure that is waiting in one transaction (each
//! inside a savepoint, so one failure does not undo its neighbours), commits
//! once with a full fsync, and only then answers them all. This is group
//! commit: durability per acknowledged change, at the cost of one fsync per
//! batch rather than per change. ARCHITECTURE.md says why rusqlite on a
//! thread and not sqlx.
//!
//! Reads do not go to that thread. A read is a few microseconds on pages
//! already in memory, and sending it there cost two thread wake-ups (there
//! and back) each; a Passport sign-in makes four reads. They run on the
//! caller's thread instead, on a read-only connection taken from a small
//! pool, inside one read transaction so that a read of several statements
//! sees one snapshot (WAL lets readers run beside the writer). A read begun
//! after a change was acknowledged sees it: the writer answers only after
//! its commit.
//!
//! One file over 700 lines on purpose: it is one `impl Store`, one statement
//! per method, read side by side with `postgres.rs` and checked by the same
//! conformance suite; split, a table's queries would scatter.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use async_trait::async_trait;
use msnp::{ListKind, PrivacyMode, PromptMode};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::INVITATION_COUNTS;
use super::{
    Account, AccountSummary, CircleLimits, CircleMessage, Credentials, ListChange, ListChanges, MEMBER_COLUMNS,
    MailboxCounts, MailboxLimits, MembershipChange, NewAccount, OfflineMessage, SnapshotRows, Store, StoreError,
    StoredCircle, StoredCircleMember, StoredPhoto, circles_from_rows, role_of, state_of,
};
use crate::lists::{AccountId, GROUP_ID_LIMIT, Group, ListBits, ListEntry, ListSnapshot};
use msnp::circle::{CircleId, CircleRole, CircleState};

/// Versioned schema migrations, applied in order, each exactly once.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE accounts (
        id            INTEGER PRIMARY KEY,
        handle        TEXT NOT NULL,
        handle_key    TEXT NOT NULL UNIQUE,
        friendly      TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        sealed_secret BLOB,
        serial        INTEGER NOT NULL DEFAULT 0,
        prompt        TEXT NOT NULL DEFAULT 'A',
        privacy       TEXT NOT NULL DEFAULT 'AL',
        disabled      INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE list_entries (
        owner_id   INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        contact_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        lists      INTEGER NOT NULL CHECK (lists > 0),
        PRIMARY KEY (owner_id, contact_id)
    ) WITHOUT ROWID;
    CREATE INDEX list_entries_contact ON list_entries(contact_id);",
    ),
    (
        2,
        "ALTER TABLE accounts ADD COLUMN list_modified_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE list_entries ADD COLUMN guid TEXT;
    ALTER TABLE list_entries ADD COLUMN nickname TEXT;
    UPDATE list_entries SET guid = lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||
        substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) ||
        substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)));
    CREATE TABLE account_properties (
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        kind       TEXT NOT NULL,
        value      TEXT NOT NULL,
        PRIMARY KEY (account_id, kind)
    ) WITHOUT ROWID;
    CREATE TABLE contact_groups (
        owner_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        group_id INTEGER NOT NULL CHECK (group_id > 0),
        guid     TEXT NOT NULL,
        name     TEXT NOT NULL,
        PRIMARY KEY (owner_id, group_id),
        UNIQUE (owner_id, guid)
    ) WITHOUT ROWID;
    CREATE TABLE group_members (
        owner_id   INTEGER NOT NULL,
        contact_id INTEGER NOT NULL,
        group_id   INTEGER NOT NULL,
        PRIMARY KEY (owner_id, contact_id, group_id),
        FOREIGN KEY (owner_id, group_id) REFERENCES contact_groups(owner_id, group_id) ON DELETE CASCADE,
        FOREIGN KEY (owner_id, contact_id) REFERENCES list_entries(owner_id, contact_id) ON DELETE CASCADE
    ) WITHOUT ROWID;",
    ),
    (
        3,
        "CREATE TABLE offline_messages (
        id              INTEGER PRIMARY KEY,
        recipient_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        guid            TEXT NOT NULL UNIQUE,
        sender          TEXT NOT NULL,
        sender_friendly TEXT NOT NULL,
        sent_at_ms      INTEGER NOT NULL,
        payload         BLOB NOT NULL
    );
    CREATE INDEX offline_messages_recipient ON offline_messages(recipient_id, id);",
    ),
    (
        4,
        "ALTER TABLE offline_messages ADD COLUMN from_contact INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE offline_messages ADD COLUMN withheld INTEGER NOT NULL DEFAULT 0;",
    ),
    // What changed when, for the address book's delta answers: each entry
    // and group is stamped with the owner's next modification time (the
    // owner's `list_modified_ms` + 1, which the change's serial bump then
    // reaches or passes), and what is removed leaves a record. Triggers, so
    // that no write path (nor an account's deletion) can forget.
    (
        5,
        "ALTER TABLE list_entries ADD COLUMN changed_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE contact_groups ADD COLUMN changed_ms INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE list_removals (
        owner_id   INTEGER NOT NULL,
        guid       TEXT NOT NULL,
        handle     TEXT,
        removed_ms INTEGER NOT NULL
    );
    CREATE INDEX list_removals_owner ON list_removals(owner_id, removed_ms);
    CREATE TRIGGER list_entries_added AFTER INSERT ON list_entries BEGIN
        UPDATE list_entries SET changed_ms = (SELECT list_modified_ms + 1 FROM accounts WHERE id = NEW.owner_id)
        WHERE owner_id = NEW.owner_id AND contact_id = NEW.contact_id;
    END;
    CREATE TRIGGER list_entries_changed AFTER UPDATE OF lists, guid, nickname ON list_entries BEGIN
        UPDATE list_entries SET changed_ms = (SELECT list_modified_ms + 1 FROM accounts WHERE id = NEW.owner_id)
        WHERE owner_id = NEW.owner_id AND contact_id = NEW.contact_id;
    END;
    CREATE TRIGGER list_entries_removed AFTER DELETE ON list_entries BEGIN
        INSERT INTO list_removals (owner_id, guid, handle, removed_ms)
        SELECT OLD.owner_id, COALESCE(OLD.guid, ''), COALESCE((SELECT handle FROM accounts WHERE id = OLD.contact_id), ''),
               list_modified_ms + 1
        FROM accounts WHERE id = OLD.owner_id;
        DELETE FROM list_removals WHERE owner_id = OLD.owner_id
            AND removed_ms < (SELECT list_modified_ms FROM accounts WHERE id = OLD.owner_id) - 7776000000;
    END;
    CREATE TRIGGER contact_groups_added AFTER INSERT ON contact_groups BEGIN
        UPDATE contact_groups SET changed_ms = (SELECT list_modified_ms + 1 FROM accounts WHERE id = NEW.owner_id)
        WHERE owner_id = NEW.owner_id AND group_id = NEW.group_id;
    END;
    CREATE TRIGGER contact_groups_renamed AFTER UPDATE OF name ON contact_groups BEGIN
        UPDATE contact_groups SET changed_ms = (SELECT list_modified_ms + 1 FROM accounts WHERE id = NEW.owner_id)
        WHERE owner_id = NEW.owner_id AND group_id = NEW.group_id;
    END;
    CREATE TRIGGER contact_groups_removed AFTER DELETE ON contact_groups BEGIN
        INSERT INTO list_removals (owner_id, guid, handle, removed_ms)
        SELECT OLD.owner_id, OLD.guid, NULL, list_modified_ms + 1 FROM accounts WHERE id = OLD.owner_id;
    END;
    CREATE TRIGGER group_members_added AFTER INSERT ON group_members BEGIN
        UPDATE list_entries SET changed_ms = (SELECT list_modified_ms + 1 FROM accounts WHERE id = NEW.owner_id)
        WHERE owner_id = NEW.owner_id AND contact_id = NEW.contact_id;
    END;
    CREATE TRIGGER group_members_removed AFTER DELETE ON group_members BEGIN
        UPDATE list_entries SET changed_ms = (SELECT list_modified_ms + 1 FROM accounts WHERE id = OLD.owner_id)
        WHERE owner_id = OLD.owner_id AND contact_id = OLD.contact_id;
    END;",
    ),
    // The storage service's display picture (MSNP13+ roaming profile).
    (
        6,
        "CREATE TABLE profile_photos (
        account_id  INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
        resource_id TEXT NOT NULL,
        name        TEXT NOT NULL,
        mime        TEXT NOT NULL,
        data        BLOB NOT NULL
    );",
    ),
    // Circles (MSNP18's persistent group chats), their members, and what
    // was said in them, kept for the members who were away.
    (
        7,
        "CREATE TABLE circles (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL
    );
    CREATE TABLE circle_members (
        circle_id      TEXT NOT NULL REFERENCES circles(id) ON DELETE CASCADE,
        account_id     INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        role           INTEGER NOT NULL,
        state          INTEGER NOT NULL,
        inviter        TEXT,
        invite_message TEXT,
        seen_id        INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (circle_id, account_id)
    );
    CREATE INDEX circle_members_by_account ON circle_members (account_id);
    CREATE TABLE circle_messages (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        circle_id       TEXT NOT NULL REFERENCES circles(id) ON DELETE CASCADE,
        sender          TEXT NOT NULL,
        sender_friendly TEXT NOT NULL,
        sent_at_ms      INTEGER NOT NULL,
        text            TEXT NOT NULL,
        format          TEXT
    );
    CREATE INDEX circle_messages_by_circle ON circle_messages (circle_id, id);",
    ),
];

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

/// The SQLite implementation of [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    readers: Arc<Readers>,
}

/// Read-only connections waiting to be used. A read holds one only while it
/// runs on its caller's thread, so there are never more in use than threads
/// reading at once (the runtime's workers).
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// Idle read connections kept; more are opened if more threads read at once
/// and closed again after.
const IDLE_READERS: usize = 8;

/// How much of the file a read connection maps rather than copies into its
/// own page cache: the pages are then the operating system's, shared by
/// every reader and the writer instead of held once per connection.
const READER_MMAP_BYTES: i64 = 1 << 30;

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Statements parsed once per connection, not at every call: a Passport
/// sign-in runs the same few, and re-parsing them was most of the SQLite
/// thread's CPU per login (`sqlite3RunParser`, `resolveExprStep`, ...).
trait Cached {
    fn run(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize>;
    fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn run(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Distinct statements the store runs; the cache holds them all.
const STATEMENT_CACHE: usize = 256;

impl SqliteStore {
    /// Opens (creating if needed) the database file and migrates it.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let mut conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
        // WAL lets the CLI read and write while the server runs; FULL makes
        // every commit reach the disk before it returns.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        // Sign-ins read the account and its lists; SQLite's default 2 MiB
        // page cache made them read from the OS in a login burst (a third of
        // the server's CPU at 10,000 users). 16 MiB holds the hot pages.
        conn.pragma_update(None, "cache_size", -16 * 1024).map_err(db)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        migrate(&mut conn)?;

        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("sqlite-store".into())
            .spawn(move || worker(conn, queue))
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let readers = Arc::new(Readers { path: path.to_path_buf(), idle: Mutex::new(Vec::new()) });
        Ok(SqliteStore { jobs, readers })
    }

    /// Runs `f` on this thread in one read transaction on a read-only
    /// connection. For reads only: the connection refuses writes.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let idle = self.readers.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => open_reader(&self.readers.path)?,
        };
        conn.run("BEGIN", []).map_err(db)?;
        let result = f(&conn);
        // A read transaction has nothing to commit; ending it lets the
        // writer's checkpoints move past the snapshot it held.
        if conn.run("COMMIT", []).is_err() {
            return result;
        }
        if let Ok(mut idle) = self.readers.idle.lock()
            && idle.len() < IDLE_READERS
        {
            idle.push(conn);
        }
        result
    }

    /// Runs `f` on the worker inside the current batch's transaction and
    /// returns its result once the batch is committed.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (ok, completion)
        });
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// A read-only connection to the database the writer has open (and so has
/// already created and migrated).
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
    conn.pragma_update(None, "mmap_size", READER_MMAP_BYTES).map_err(db)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Writes a consistent copy of the database at `db` to `dest` (which must
/// not exist), while a server may be using it: `VACUUM INTO` reads one
/// snapshot, so the copy holds every change committed before it began and
/// none after.
pub fn backup(database: &Path, dest: &Path) -> Result<(), StoreError> {
    if dest.exists() {
        return Err(StoreError::Database(format!("{} already exists", dest.display())));
    }
    let conn = Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
    let dest = dest.to_str().ok_or_else(|| StoreError::Database("the backup path is not UTF-8".into()))?;
    conn.execute("VACUUM INTO ?1", [dest]).map_err(db)?;
    Ok(())
}

/// Checks that `file` is a whole Mariposa database: SQLite's integrity
/// check passes and the schema is one we know.
pub fn verify(file: &Path) -> Result<(), StoreError> {
    let conn = Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(db)?;
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(db)?;
    if check != "ok" {
        return Err(StoreError::Database(format!("integrity check: {check}")));
    }
    let version: i64 = conn.query_row("SELECT MAX(version) FROM schema_migrations", [], |r| r.get(0)).map_err(db)?;
    let newest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if version > newest {
        return Err(StoreError::Database(format!("schema version {version} is newer than this msnd ({newest})")));
    }
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(db)?;
    let current: i64 =
        conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0)).map_err(db)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction().map_err(db)?;
        tx.execute_batch(sql).map_err(db)?;
        tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)", params![version, now()])
            .map_err(db)?;
        tx.commit().map_err(db)?;
    }
    Ok(())
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Runs batches until every sender is gone.
fn worker(conn: Connection, queue: mpsc::Receiver<Job>) {
    const MAX_BATCH: usize = 256;
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut completions = Vec::with_capacity(batch.len());
        let begun = conn.run("BEGIN IMMEDIATE", []).map(drop).map_err(db);
        if let Err(e) = begun {
            let msg = e.to_string();
            // Run nothing; tell every caller.
            for job in batch {
                drop(job);
            }
            tracing::error!("store: cannot begin a transaction: {msg}");
            continue;
        }
        for job in batch {
            let _ = conn.run("SAVEPOINT job", []);
            let (ok, completion) = job(&conn);
            if !ok {
                let _ = conn.run("ROLLBACK TO job", []);
            }
            let _ = conn.run("RELEASE job", []);
            completions.push(completion);
        }
        match conn.run("COMMIT", []) {
            Ok(_) => completions.into_iter().for_each(|c| c(Ok(()))),
            Err(e) => {
                let _ = conn.run("ROLLBACK", []);
                let msg = e.to_string();
                tracing::error!("store: commit failed: {msg}");
                completions.into_iter().for_each(|c| c(Err(StoreError::Database(msg.clone()))));
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn bump_serial(conn: &Connection, id: AccountId) -> Result<u32, StoreError> {
    // The modification time never goes backwards, so MSNP10+ versions change
    // with every change even if the clock does.
    conn.row(
        "UPDATE accounts SET serial = serial + 1, list_modified_ms = max(list_modified_ms + 1, ?2)
         WHERE id = ?1 RETURNING serial",
        params![id, now_ms()],
        |r| r.get(0),
    )
    .optional()
    .map_err(db)?
    .ok_or(StoreError::NoSuchAccount)
}

fn set_bit(
    conn: &Connection,
    owner: AccountId,
    contact: AccountId,
    bit: u8,
    member: bool,
    new_guid: &str,
) -> Result<(), StoreError> {
    if member {
        conn.run(
            "INSERT INTO list_entries (owner_id, contact_id, lists, guid) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (owner_id, contact_id) DO UPDATE
             SET lists = lists | excluded.lists, guid = COALESCE(guid, excluded.guid)",
            params![owner, contact, bit, new_guid],
        )
        .map_err(db)?;
    } else {
        conn.run(
            "UPDATE list_entries SET lists = lists & ~?3 WHERE owner_id = ?1 AND contact_id = ?2 AND lists != ?3",
            params![owner, contact, bit],
        )
        .map_err(db)?;
        conn.run(
            "DELETE FROM list_entries WHERE owner_id = ?1 AND contact_id = ?2 AND lists = ?3",
            params![owner, contact, bit],
        )
        .map_err(db)?;
    }
    Ok(())
}

/// Reads everything `SYN` needs for one account.
fn snapshot(conn: &Connection, id: AccountId) -> Result<ListSnapshot, StoreError> {
    let (serial, modified_ms, prompt, privacy, friendly) = conn
        .row("SELECT serial, list_modified_ms, prompt, privacy, friendly FROM accounts WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()
        .map_err(db)?
        .ok_or(StoreError::NoSuchAccount)?;
    let properties = rows(conn, "SELECT kind, value FROM account_properties WHERE account_id = ?1", id, |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    let groups =
        rows(conn, "SELECT group_id, guid, name FROM contact_groups WHERE owner_id = ?1 ORDER BY group_id", id, |r| {
            Ok(Group { id: r.get(0)?, guid: r.get(1)?, name: r.get(2)? })
        })?;
    let entries = rows(
        conn,
        // Someone who does not allow the owner (blocks them, or is in BL
        // mode without them on the allow list) shows only their handle:
        // their name would change before the blocked person's eyes.
        "SELECT e.contact_id, a.handle,
            CASE WHEN COALESCE(r.lists & 4, 0) != 0 OR (a.privacy = 'BL' AND COALESCE(r.lists & 2, 0) = 0)
                 THEN a.handle ELSE a.friendly END,
            e.lists, COALESCE(e.guid, ''), e.nickname
         FROM list_entries e JOIN accounts a ON a.id = e.contact_id
         LEFT JOIN list_entries r ON r.owner_id = e.contact_id AND r.contact_id = e.owner_id
         WHERE e.owner_id = ?1 ORDER BY a.handle_key",
        id,
        |r| {
            Ok(ListEntry {
                contact_id: r.get(0)?,
                handle: r.get(1)?,
                friendly: r.get(2)?,
                lists: ListBits(r.get(3)?),
                guid: r.get(4)?,
                groups: Vec::new(),
                nickname: r.get(5)?,
                phones: Vec::new(),
            })
        },
    )?;
    let memberships =
        rows(conn, "SELECT contact_id, group_id FROM group_members WHERE owner_id = ?1 ORDER BY group_id", id, |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    // A contact's phones are shown to those the contact allows explicitly.
    let contact_phones = rows(
        conn,
        "SELECT p.account_id, p.kind, p.value FROM account_properties p
         JOIN list_entries r ON r.owner_id = p.account_id AND r.contact_id = ?1 AND (r.lists & 2) != 0
         WHERE p.kind IN ('PHH', 'PHW', 'PHM', 'MOB', 'MBE')",
        id,
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(SnapshotRows {
        serial,
        modified_ms,
        prompt,
        privacy,
        friendly,
        properties,
        groups,
        entries,
        memberships,
        contact_phones,
    }
    .into_snapshot())
}

/// Runs a cached query for one account id and collects its rows.
fn rows<T>(
    conn: &Connection,
    sql: &str,
    id: AccountId,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    conn.prepare_cached(sql).map_err(db)?.query_map([id], row).map_err(db)?.collect::<Result<_, _>>().map_err(db)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_account(&self, account: NewAccount) -> Result<AccountId, StoreError> {
        self.run(move |conn| {
            let key = account.handle.to_ascii_lowercase();
            let exists: bool = conn
                .row("SELECT EXISTS(SELECT 1 FROM accounts WHERE handle_key = ?1)", [&key], |r| r.get(0))
                .map_err(db)?;
            if exists {
                return Err(StoreError::AccountExists);
            }
            conn.run(
                "INSERT INTO accounts (handle, handle_key, friendly, password_hash, sealed_secret, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    account.handle,
                    key,
                    account.friendly,
                    account.credentials.password_hash,
                    account.credentials.sealed_secret,
                    now()
                ],
            )
            .map_err(db)?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    async fn delete_account(&self, handle_key: &str) -> Result<(), StoreError> {
        let key = handle_key.to_string();
        self.run(move |conn| {
            let id: AccountId = conn
                .row("SELECT id FROM accounts WHERE handle_key = ?1", [&key], |r| r.get(0))
                .optional()
                .map_err(db)?
                .ok_or(StoreError::NoSuchAccount)?;
            let owners: Vec<AccountId> = conn
                .prepare("SELECT owner_id FROM list_entries WHERE contact_id = ?1")
                .and_then(|mut s| s.query_map([id], |r| r.get(0))?.collect())
                .map_err(db)?;
            // After the delete, so that the modification time reaches the
            // stamp of the removal records the delete leaves.
            conn.run("DELETE FROM accounts WHERE id = ?1", [id]).map_err(db)?;
            for owner in owners {
                bump_serial(conn, owner)?;
            }
            Ok(())
        })
        .await
    }

    async fn set_disabled(&self, handle_key: &str, disabled: bool) -> Result<(), StoreError> {
        let key = handle_key.to_string();
        self.run(move |conn| {
            let n = conn
                .run("UPDATE accounts SET disabled = ?2 WHERE handle_key = ?1", params![key, disabled])
                .map_err(db)?;
            if n == 0 { Err(StoreError::NoSuchAccount) } else { Ok(()) }
        })
        .await
    }

    async fn set_credentials(&self, handle_key: &str, credentials: Credentials) -> Result<(), StoreError> {
        let key = handle_key.to_string();
        self.run(move |conn| {
            let n = conn
                .run(
                    "UPDATE accounts SET password_hash = ?2, sealed_secret = ?3 WHERE handle_key = ?1",
                    params![key, credentials.password_hash, credentials.sealed_secret],
                )
                .map_err(db)?;
            if n == 0 { Err(StoreError::NoSuchAccount) } else { Ok(()) }
        })
        .await
    }

    async fn list_accounts(&self) -> Result<Vec<AccountSummary>, StoreError> {
        // Every account: too long a read to hold an async worker for, on a
        // big server, so it gets a blocking thread of its own.
        let store = self.clone();
        let all = tokio::task::spawn_blocking(move || {
            store.read(|conn| {
                let mut stmt = conn
                    .prepare(
                        "SELECT handle, friendly, disabled,
                            (SELECT COUNT(*) FROM list_entries WHERE owner_id = accounts.id AND lists & 1)
                     FROM accounts ORDER BY handle_key",
                    )
                    .map_err(db)?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok(AccountSummary {
                            handle: r.get(0)?,
                            friendly: r.get(1)?,
                            disabled: r.get(2)?,
                            contacts: r.get::<_, i64>(3)? as usize,
                        })
                    })
                    .map_err(db)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db)
            })
        });
        all.await.map_err(|_| StoreError::Closed)?
    }

    async fn account(&self, handle_key: &str) -> Result<Option<Account>, StoreError> {
        let key = handle_key.to_string();
        self.read(move |conn| {
            conn.row(
                "SELECT id, handle, friendly, password_hash, sealed_secret, disabled FROM accounts WHERE handle_key = ?1",
                [&key],
                |r| {
                    Ok(Account {
                        id: r.get(0)?,
                        handle: r.get(1)?,
                        friendly: r.get(2)?,
                        credentials: Credentials { password_hash: r.get(3)?, sealed_secret: r.get(4)? },
                        disabled: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(db)
        })
    }

    async fn list_snapshot(&self, id: AccountId) -> Result<ListSnapshot, StoreError> {
        self.read(move |conn| snapshot(conn, id))
    }

    async fn photo(&self, id: AccountId) -> Result<Option<StoredPhoto>, StoreError> {
        self.read(move |conn| {
            conn.row("SELECT resource_id, name, mime, data FROM profile_photos WHERE account_id = ?1", [id], |r| {
                Ok(StoredPhoto { resource_id: r.get(0)?, name: r.get(1)?, mime: r.get(2)?, data: r.get(3)? })
            })
            .optional()
            .map_err(db)
        })
    }

    async fn set_photo(&self, id: AccountId, photo: Option<StoredPhoto>) -> Result<(), StoreError> {
        self.run(move |conn| {
            match photo {
                Some(p) => conn.run(
                    "INSERT INTO profile_photos (account_id, resource_id, name, mime, data) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (account_id) DO UPDATE SET resource_id = excluded.resource_id, name = excluded.name,
                     mime = excluded.mime, data = excluded.data",
                    params![id, p.resource_id, p.name, p.mime, p.data],
                ),
                None => conn.run("DELETE FROM profile_photos WHERE account_id = ?1", [id]),
            }
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn list_changes(&self, id: AccountId, since_ms: i64) -> Result<Option<ListChanges>, StoreError> {
        self.read(move |conn| {
            let (modified, kept_since): (i64, i64) = conn
                .row(
                    "SELECT list_modified_ms, (SELECT applied_at * 1000 FROM schema_migrations WHERE version = 5)
                     FROM accounts WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db)?
                .ok_or(StoreError::NoSuchAccount)?;
            if modified <= since_ms {
                return Ok(Some(ListChanges::default()));
            }
            if since_ms < kept_since.max(modified - super::REMOVALS_KEPT_MS) {
                return Ok(None);
            }
            let ids = |sql: &str| -> Result<Vec<i64>, StoreError> {
                let mut stmt = conn.prepare_cached(sql).map_err(db)?;
                let rows = stmt.query_map(params![id, since_ms], |r| r.get(0)).map_err(db)?;
                rows.collect::<Result<_, _>>().map_err(db)
            };
            let contacts = ids("SELECT contact_id FROM list_entries WHERE owner_id = ?1 AND changed_ms > ?2")?;
            let groups = ids("SELECT group_id FROM contact_groups WHERE owner_id = ?1 AND changed_ms > ?2")?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT guid, handle FROM list_removals WHERE owner_id = ?1 AND removed_ms > ?2 ORDER BY removed_ms",
                )
                .map_err(db)?;
            let removed = stmt
                .query_map(params![id, since_ms], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            Ok(Some(super::removals(contacts, groups, removed)))
        })
    }

    async fn set_list_membership(
        &self,
        owner: AccountId,
        contact: AccountId,
        list: ListKind,
        member: bool,
        new_guid: &str,
    ) -> Result<ListChange, StoreError> {
        let new_guid = new_guid.to_string();
        // The reverse-list entry the other side gets needs a GUID too.
        let reverse_guid = crate::secrets::new_guid();
        self.run(move |conn| {
            set_bit(conn, owner, contact, list.bit(), member, &new_guid)?;
            if list == ListKind::Forward && !member {
                conn.run("DELETE FROM group_members WHERE owner_id = ?1 AND contact_id = ?2", [owner, contact])
                    .map_err(db)?;
            }
            let owner_serial = bump_serial(conn, owner)?;
            let contact_serial = if list == ListKind::Forward {
                set_bit(conn, contact, owner, ListKind::Reverse.bit(), member, &reverse_guid)?;
                Some(bump_serial(conn, contact)?)
            } else {
                None
            };
            let guid: Option<String> = conn
                .row("SELECT guid FROM list_entries WHERE owner_id = ?1 AND contact_id = ?2", [owner, contact], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db)?
                .flatten();
            Ok(ListChange { owner_serial, contact_serial, guid: guid.unwrap_or_default() })
        })
        .await
    }

    async fn create_group(&self, owner: AccountId, name: &str, guid: &str) -> Result<(u32, u32), StoreError> {
        let (name, guid) = (name.to_string(), guid.to_string());
        self.run(move |conn| {
            let id: u32 = conn
                .row(
                    "SELECT COALESCE(MIN(g.group_id + 1), 1) FROM (SELECT 0 AS group_id UNION ALL
                         SELECT group_id FROM contact_groups WHERE owner_id = ?1) g
                     WHERE NOT EXISTS (SELECT 1 FROM contact_groups c WHERE c.owner_id = ?1 AND c.group_id = g.group_id + 1)",
                    [owner],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if id >= GROUP_ID_LIMIT {
                return Err(StoreError::TooManyGroups);
            }
            conn.run(
                "INSERT INTO contact_groups (owner_id, group_id, guid, name) VALUES (?1, ?2, ?3, ?4)",
                params![owner, id, guid, name],
            )
            .map_err(db)?;
            Ok((id, bump_serial(conn, owner)?))
        })
        .await
    }

    async fn delete_group(&self, owner: AccountId, id: u32) -> Result<u32, StoreError> {
        self.run(move |conn| {
            conn.run("DELETE FROM contact_groups WHERE owner_id = ?1 AND group_id = ?2", params![owner, id])
                .map_err(db)?;
            bump_serial(conn, owner)
        })
        .await
    }

    async fn rename_group(&self, owner: AccountId, id: u32, name: &str) -> Result<u32, StoreError> {
        let name = name.to_string();
        self.run(move |conn| {
            conn.run(
                "UPDATE contact_groups SET name = ?3 WHERE owner_id = ?1 AND group_id = ?2",
                params![owner, id, name],
            )
            .map_err(db)?;
            bump_serial(conn, owner)
        })
        .await
    }

    async fn set_group_membership(
        &self,
        owner: AccountId,
        contact: AccountId,
        group: u32,
        member: bool,
    ) -> Result<u32, StoreError> {
        self.run(move |conn| {
            if member {
                conn.run(
                    "INSERT OR IGNORE INTO group_members (owner_id, contact_id, group_id) VALUES (?1, ?2, ?3)",
                    params![owner, contact, group],
                )
            } else {
                conn.run(
                    "DELETE FROM group_members WHERE owner_id = ?1 AND contact_id = ?2 AND group_id = ?3",
                    params![owner, contact, group],
                )
            }
            .map_err(db)?;
            bump_serial(conn, owner)
        })
        .await
    }

    async fn set_property(
        &self,
        id: AccountId,
        kind: &str,
        value: Option<&str>,
        bump: bool,
    ) -> Result<u32, StoreError> {
        let (kind, value) = (kind.to_string(), value.map(str::to_string));
        self.run(move |conn| {
            match &value {
                Some(v) => conn.run(
                    "INSERT INTO account_properties (account_id, kind, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (account_id, kind) DO UPDATE SET value = excluded.value",
                    params![id, kind, v],
                ),
                None => {
                    conn.run("DELETE FROM account_properties WHERE account_id = ?1 AND kind = ?2", params![id, kind])
                }
            }
            .map_err(db)?;
            if bump {
                bump_serial(conn, id)
            } else {
                conn.row("SELECT serial FROM accounts WHERE id = ?1", [id], |r| r.get(0)).map_err(db)
            }
        })
        .await
    }

    async fn store_offline_message(
        &self,
        recipient: AccountId,
        message: OfflineMessage,
        limits: MailboxLimits,
    ) -> Result<OfflineMessage, StoreError> {
        self.run(move |conn| {
            let waiting = conn
                .row(
                    "SELECT COUNT(*),
                        COALESCE(SUM(CASE WHEN lower(sender) = lower(?2) THEN 1 ELSE 0 END), 0),
                        COALESCE(SUM(CASE WHEN from_contact = 0 THEN 1 ELSE 0 END), 0)
                     FROM offline_messages WHERE recipient_id = ?1",
                    params![recipient, message.sender],
                    |r| {
                        Ok(MailboxCounts {
                            total: r.get::<_, i64>(0)? as usize,
                            from_sender: r.get::<_, i64>(1)? as usize,
                            from_strangers: r.get::<_, i64>(2)? as usize,
                        })
                    },
                )
                .map_err(db)?;
            if !limits.admits(waiting, message.from_contact) {
                return Err(StoreError::QuotaExceeded);
            }
            conn.run(
                "INSERT INTO offline_messages
                    (recipient_id, guid, sender, sender_friendly, sent_at_ms, payload, from_contact, withheld)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    recipient,
                    message.guid,
                    message.sender,
                    message.sender_friendly,
                    message.sent_at_ms,
                    message.payload,
                    message.from_contact,
                    message.withheld
                ],
            )
            .map_err(db)?;
            Ok(OfflineMessage { id: conn.last_insert_rowid(), ..message })
        })
        .await
    }

    async fn offline_messages(&self, recipient: AccountId) -> Result<Vec<OfflineMessage>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT id, guid, sender, sender_friendly, sent_at_ms, payload, from_contact, withheld
                 FROM offline_messages WHERE recipient_id = ?1 ORDER BY id",
            )
            .map_err(db)?
            .query_map([recipient], |r| {
                Ok(OfflineMessage {
                    id: r.get(0)?,
                    guid: r.get(1)?,
                    sender: r.get(2)?,
                    sender_friendly: r.get(3)?,
                    sent_at_ms: r.get(4)?,
                    payload: r.get(5)?,
                    from_contact: r.get(6)?,
                    withheld: r.get(7)?,
                })
            })
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)
        })
    }

    async fn delete_offline_messages(&self, recipient: AccountId, ids: &[i64]) -> Result<usize, StoreError> {
        let ids = ids.to_vec();
        self.run(move |conn| {
            let mut stmt =
                conn.prepare_cached("DELETE FROM offline_messages WHERE recipient_id = ?1 AND id = ?2").map_err(db)?;
            let mut n = 0;
            for id in ids {
                n += stmt.execute(params![recipient, id]).map_err(db)?;
            }
            Ok(n)
        })
        .await
    }

    async fn set_nickname(
        &self,
        owner: AccountId,
        contact: AccountId,
        nickname: Option<&str>,
    ) -> Result<(), StoreError> {
        let nickname = nickname.map(str::to_string);
        self.run(move |conn| {
            conn.run(
                "UPDATE list_entries SET nickname = ?3 WHERE owner_id = ?1 AND contact_id = ?2",
                params![owner, contact, nickname],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn set_privacy(&self, id: AccountId, mode: PrivacyMode) -> Result<u32, StoreError> {
        self.run(move |conn| {
            conn.run("UPDATE accounts SET privacy = ?2 WHERE id = ?1", params![id, mode.code()]).map_err(db)?;
            bump_serial(conn, id)
        })
        .await
    }

    async fn set_prompt(&self, id: AccountId, mode: PromptMode) -> Result<u32, StoreError> {
        self.run(move |conn| {
            conn.run("UPDATE accounts SET prompt = ?2 WHERE id = ?1", params![id, mode.code()]).map_err(db)?;
            bump_serial(conn, id)
        })
        .await
    }

    async fn set_friendly_name(&self, id: AccountId, friendly: &str) -> Result<u32, StoreError> {
        let friendly = friendly.to_string();
        self.run(move |conn| {
            conn.run("UPDATE accounts SET friendly = ?2 WHERE id = ?1", params![id, friendly]).map_err(db)?;
            bump_serial(conn, id)
        })
        .await
    }
    async fn create_circle(
        &self,
        owner: AccountId,
        id: &CircleId,
        name: &str,
        limits: CircleLimits,
    ) -> Result<(), StoreError> {
        let (id, name) = (id.hex().to_string(), name.to_string());
        self.run(move |conn| {
            let held: i64 = conn
                .row("SELECT COUNT(*) FROM circle_members WHERE account_id = ?1", [owner], |r| r.get(0))
                .map_err(db)?;
            if held as usize >= limits.per_account {
                return Err(StoreError::CircleFull);
            }
            conn.run("INSERT INTO circles (id, name) VALUES (?1, ?2)", params![id, name]).map_err(db)?;
            conn.run(
                "INSERT INTO circle_members (circle_id, account_id, role, state) VALUES (?1, ?2, ?3, ?4)",
                params![id, owner, CircleRole::Admin.number(), CircleState::Accepted.number()],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn circle(&self, id: &CircleId) -> Result<Option<StoredCircle>, StoreError> {
        let id = id.hex().to_string();
        self.read(move |conn| {
            let rows = circle_rows(conn, "c.id = ?1", id)?;
            Ok(circles_from_rows(rows).pop())
        })
    }

    async fn circles_of(&self, account: AccountId) -> Result<Vec<StoredCircle>, StoreError> {
        self.read(move |conn| {
            let rows =
                circle_rows(conn, "c.id IN (SELECT circle_id FROM circle_members WHERE account_id = ?1)", account)?;
            Ok(circles_from_rows(rows))
        })
    }

    async fn change_membership(
        &self,
        id: &CircleId,
        account: AccountId,
        change: MembershipChange,
        limits: CircleLimits,
    ) -> Result<(), StoreError> {
        let id = id.hex().to_string();
        self.run(move |conn| {
            let exists: bool =
                conn.row("SELECT EXISTS (SELECT 1 FROM circles WHERE id = ?1)", [&id], |r| r.get(0)).map_err(db)?;
            if !exists {
                return Err(StoreError::NoSuchCircle);
            }
            match change {
                MembershipChange::Invite { inviter, message } => {
                    let (already, members, held): (bool, i64, i64) = conn
                        .row(INVITATION_COUNTS, params![id, account], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .map_err(db)?;
                    if already {
                        return Ok(());
                    }
                    if members as usize >= limits.members || held as usize >= limits.per_account {
                        return Err(StoreError::CircleFull);
                    }
                    conn.run(
                        "INSERT INTO circle_members (circle_id, account_id, role, state, inviter, invite_message)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            id,
                            account,
                            CircleRole::Member.number(),
                            CircleState::WaitingResponse.number(),
                            inviter,
                            message
                        ],
                    )
                    .map_err(db)?;
                }
                MembershipChange::Accept => {
                    let changed = conn
                        .run(
                            "UPDATE circle_members SET state = ?3, inviter = NULL, invite_message = NULL,
                             seen_id = (SELECT COALESCE(MAX(id), 0) FROM circle_messages WHERE circle_id = ?1)
                             WHERE circle_id = ?1 AND account_id = ?2",
                            params![id, account, CircleState::Accepted.number()],
                        )
                        .map_err(db)?;
                    if changed == 0 {
                        return Err(StoreError::NoSuchCircle);
                    }
                }
                MembershipChange::Remove => {
                    let changed = conn
                        .run(
                            "DELETE FROM circle_members WHERE circle_id = ?1 AND account_id = ?2",
                            params![id, account],
                        )
                        .map_err(db)?;
                    if changed == 0 {
                        return Err(StoreError::NoSuchCircle);
                    }
                    // A circle nobody is in any more is gone, with what was said.
                    conn.run(
                        "DELETE FROM circles WHERE id = ?1 AND NOT EXISTS
                         (SELECT 1 FROM circle_members WHERE circle_id = ?1 AND state = ?2)",
                        params![id, CircleState::Accepted.number()],
                    )
                    .map_err(db)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn store_circle_message(
        &self,
        id: &CircleId,
        message: CircleMessage,
        keep: usize,
    ) -> Result<i64, StoreError> {
        let id = id.hex().to_string();
        self.run(move |conn| {
            conn.run(
                "INSERT INTO circle_messages (circle_id, sender, sender_friendly, sent_at_ms, text, format)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, message.sender, message.sender_friendly, message.sent_at_ms, message.text, message.format],
            )
            .map_err(db)?;
            let new_id = conn.last_insert_rowid();
            conn.run(
                "DELETE FROM circle_messages WHERE circle_id = ?1 AND id <= ?2",
                params![id, new_id - keep as i64],
            )
            .map_err(db)?;
            Ok(new_id)
        })
        .await
    }

    async fn circle_messages_after(&self, id: &CircleId, after_id: i64) -> Result<Vec<CircleMessage>, StoreError> {
        let id = id.hex().to_string();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT id, sender, sender_friendly, sent_at_ms, text, format FROM circle_messages
                 WHERE circle_id = ?1 AND id > ?2 ORDER BY id",
            )
            .map_err(db)?
            .query_map(params![id, after_id], |r| {
                Ok(CircleMessage {
                    id: r.get(0)?,
                    sender: r.get(1)?,
                    sender_friendly: r.get(2)?,
                    sent_at_ms: r.get(3)?,
                    text: r.get(4)?,
                    format: r.get(5)?,
                })
            })
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)
        })
    }

    async fn mark_circle_seen(&self, id: &CircleId, account: AccountId, seen_id: i64) -> Result<(), StoreError> {
        let id = id.hex().to_string();
        self.run(move |conn| {
            conn.run(
                "UPDATE circle_members SET seen_id = MAX(seen_id, ?3) WHERE circle_id = ?1 AND account_id = ?2",
                params![id, account, seen_id],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }
}

/// The member rows of the circles `filter` picks, by circle then account.
fn circle_rows<P: rusqlite::ToSql>(
    conn: &Connection,
    filter: &str,
    arg: P,
) -> Result<Vec<(String, String, StoredCircleMember)>, StoreError> {
    let sql = format!(
        "SELECT c.id, c.name, {MEMBER_COLUMNS} FROM circles c JOIN circle_members m ON m.circle_id = c.id
         JOIN accounts a ON a.id = m.account_id WHERE {filter} ORDER BY c.id, m.role, a.handle_key"
    );
    conn.prepare_cached(&sql)
        .map_err(db)?
        .query_map([arg], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                StoredCircleMember {
                    account: r.get(2)?,
                    handle: r.get(3)?,
                    friendly: r.get(4)?,
                    role: role_of(r.get(5)?),
                    state: state_of(r.get(6)?),
                    inviter: r.get(7)?,
                    invite_message: r.get(8)?,
                    seen_id: r.get(9)?,
                },
            ))
        })
        .map_err(db)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_account(handle: &str) -> NewAccount {
        NewAccount {
            handle: handle.into(),
            friendly: handle.into(),
            credentials: Credentials { password_hash: "x".into(), sealed_secret: None },
        }
    }

    /// A read runs on its caller's thread: it neither waits for the writer's
    /// batch in progress nor sees that batch's uncommitted work, and it sees
    /// what the writer acknowledged.
    #[tokio::test]
    async fn reads_run_beside_a_busy_writer_and_see_only_what_it_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        let first = store.create_account(new_account("first@x.com")).await.unwrap();

        // The writer inserts a second account, then waits inside its
        // transaction until the test lets it go.
        let (release, held) = mpsc::channel::<()>();
        let (inserted_tx, inserted) = oneshot::channel::<()>();
        let writer = store.clone();
        let batch = tokio::spawn(async move {
            writer
                .run(move |conn| {
                    conn.run(
                        "INSERT INTO accounts (handle, handle_key, friendly, password_hash, created_at)
                         VALUES (?1, ?1, ?1, 'x', 0)",
                        ["second@x.com"],
                    )
                    .map_err(db)?;
                    let _ = inserted_tx.send(());
                    held.recv().map_err(|_| StoreError::Closed)?;
                    Ok(())
                })
                .await
        });
        inserted.await.unwrap();

        let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            (store.account("first@x.com").await, store.account("second@x.com").await)
        })
        .await
        .expect("a read waited for the writer's batch");
        assert_eq!(read.0.unwrap().map(|a| a.id), Some(first));
        assert!(read.1.unwrap().is_none(), "a read saw a change not yet committed");

        release.send(()).unwrap();
        batch.await.unwrap().unwrap();
        assert!(store.account("second@x.com").await.unwrap().is_some(), "a read missed an acknowledged change");
    }
}
