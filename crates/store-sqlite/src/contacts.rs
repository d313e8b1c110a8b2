//! Contact records: every call and chat, stored when it ends, found again by customer (the
//! screen pop's history), by time, agent, queue, outcome or words (the admin search), and
//! given the agent's notes and the chat's transcript afterwards.

use rusqlite::{OptionalExtension, Row, params};

use crate::{Database, Error};

/// The customer record a contact belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRef {
    /// Records database.
    pub database: String,
    /// Table.
    pub table: String,
    /// The record's id.
    pub record_id: i64,
}

/// One contact as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    /// The contact's id.
    pub id: i64,
    /// `voice` or `chat`.
    pub channel: String,
    /// Caller's number or the chat's address.
    pub customer_address: String,
    /// The customer's record, when the lookup found one.
    pub customer: Option<CustomerRef>,
    /// The customer's name as it was then.
    pub customer_name: String,
    /// Queue.
    pub queue: Option<String>,
    /// Agent who took it.
    pub agent: Option<String>,
    /// When it began (RFC 3339 UTC), and then queued, connected and ended.
    pub initiated_at: String,
    /// When it was queued.
    pub queued_at: Option<String>,
    /// When an agent took it.
    pub connected_at: Option<String>,
    /// When it ended.
    pub ended_at: String,
    /// `Completed`, `Abandoned`, `NoAgentAvailable`, `OutOfHours`, `EndedByFlow` or `Error`.
    pub outcome: String,
    /// Contact attributes as a JSON object.
    pub attributes: String,
    /// The agent's wrap-up notes.
    pub notes: String,
    /// The chat transcript as a JSON array.
    pub transcript: String,
    /// Where the call recording is.
    pub recording: Option<String>,
}

/// What an admin search asks for; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct ContactSearch {
    /// Began at or after (RFC 3339 UTC).
    pub since: Option<String>,
    /// Began before.
    pub until: Option<String>,
    /// Agent.
    pub agent: Option<String>,
    /// Queue.
    pub queue: Option<String>,
    /// Outcome.
    pub outcome: Option<String>,
    /// Words found in the address, the customer's name, the notes or the transcript.
    pub text: Option<String>,
    /// Most rows returned.
    pub limit: u32,
}

const COLUMNS: &str = "id, channel, customer_address, customer_database, customer_table, \
    customer_record_id, customer_name, queue, agent, initiated_at, queued_at, connected_at, \
    ended_at, outcome, attributes, notes, transcript, recording";

fn read(row: &Row<'_>) -> rusqlite::Result<ContactRow> {
    let database: Option<String> = row.get(3)?;
    let table: Option<String> = row.get(4)?;
    let record_id: Option<i64> = row.get(5)?;
    Ok(ContactRow {
        id: row.get(0)?,
        channel: row.get(1)?,
        customer_address: row.get(2)?,
        customer: match (database, table, record_id) {
            (Some(database), Some(table), Some(record_id)) => Some(CustomerRef {
                database,
                table,
                record_id,
            }),
            _ => None,
        },
        customer_name: row.get(6)?,
        queue: row.get(7)?,
        agent: row.get(8)?,
        initiated_at: row.get(9)?,
        queued_at: row.get(10)?,
        connected_at: row.get(11)?,
        ended_at: row.get(12)?,
        outcome: row.get(13)?,
        attributes: row.get(14)?,
        notes: row.get(15)?,
        transcript: row.get(16)?,
        recording: row.get(17)?,
    })
}

/// `%`, `_` and `\` in a LIKE pattern stand for themselves.
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for character in text.chars() {
        if matches!(character, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(character);
    }
    out.push('%');
    out
}

impl Database {
    /// Stores an ended contact (again, if it was stored before: the row is replaced whole).
    pub fn save_contact(&self, contact: &ContactRow) -> Result<(), Error> {
        let customer = contact.customer.as_ref();
        self.connection.execute(
            &format!(
                "INSERT OR REPLACE INTO contacts ({COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
            ),
            params![
                contact.id,
                contact.channel,
                contact.customer_address,
                customer.map(|c| &c.database),
                customer.map(|c| &c.table),
                customer.map(|c| c.record_id),
                contact.customer_name,
                contact.queue,
                contact.agent,
                contact.initiated_at,
                contact.queued_at,
                contact.connected_at,
                contact.ended_at,
                contact.outcome,
                contact.attributes,
                contact.notes,
                contact.transcript,
                contact.recording,
            ],
        )?;
        Ok(())
    }

    /// Sets the wrap-up notes of a contact the agent handled; `false` if no such contact of
    /// theirs exists.
    pub fn set_contact_notes(&self, id: i64, agent: &str, notes: &str) -> Result<bool, Error> {
        let changed = self.connection.execute(
            "UPDATE contacts SET notes = ?3 WHERE id = ?1 AND agent = ?2",
            params![id, agent, notes],
        )?;
        Ok(changed == 1)
    }

    /// One contact.
    pub fn contact(&self, id: i64) -> Result<Option<ContactRow>, Error> {
        Ok(self
            .connection
            .prepare_cached(&format!("SELECT {COLUMNS} FROM contacts WHERE id = ?1"))?
            .query_row([id], read)
            .optional()?)
    }

    /// The customer's contacts, newest first.
    pub fn customer_contacts(
        &self,
        customer: &CustomerRef,
        limit: u32,
    ) -> Result<Vec<ContactRow>, Error> {
        let mut statement = self.connection.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM contacts WHERE customer_database = ?1 AND customer_table = ?2 \
             AND customer_record_id = ?3 ORDER BY initiated_at DESC, id DESC LIMIT ?4"
        ))?;
        let rows = statement
            .query_map(
                params![customer.database, customer.table, customer.record_id, limit],
                read,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Contacts matching a search, newest first.
    pub fn search_contacts(&self, search: &ContactSearch) -> Result<Vec<ContactRow>, Error> {
        let text = search.text.as_deref().map(like_literal);
        let mut statement = self.connection.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM contacts WHERE \
             (?1 IS NULL OR initiated_at >= ?1) AND (?2 IS NULL OR initiated_at < ?2) \
             AND (?3 IS NULL OR agent = ?3) AND (?4 IS NULL OR queue = ?4) \
             AND (?5 IS NULL OR outcome = ?5) \
             AND (?6 IS NULL OR customer_address LIKE ?6 ESCAPE '\\' OR customer_name LIKE ?6 ESCAPE '\\' \
                  OR notes LIKE ?6 ESCAPE '\\' OR transcript LIKE ?6 ESCAPE '\\') \
             ORDER BY initiated_at DESC, id DESC LIMIT ?7"
        ))?;
        let rows = statement
            .query_map(
                params![
                    search.since,
                    search.until,
                    search.agent,
                    search.queue,
                    search.outcome,
                    text,
                    search.limit
                ],
                read,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The highest contact id stored (0 if none): new ids continue after it.
    pub fn last_contact_id(&self) -> Result<i64, Error> {
        Ok(self
            .connection
            .query_row("SELECT coalesce(max(id), 0) FROM contacts", [], |row| {
                row.get(0)
            })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(id: i64, record: Option<i64>, initiated: &str, agent: &str) -> ContactRow {
        ContactRow {
            id,
            channel: "chat".into(),
            customer_address: "hanako.sato@example.jp".into(),
            customer: record.map(|record_id| CustomerRef {
                database: "demo".into(),
                table: "customers".into(),
                record_id,
            }),
            customer_name: "佐藤 花子".into(),
            queue: Some("support".into()),
            agent: Some(agent.into()),
            initiated_at: initiated.into(),
            queued_at: Some(initiated.into()),
            connected_at: Some(initiated.into()),
            ended_at: initiated.into(),
            outcome: "Completed".into(),
            attributes: "{}".into(),
            notes: String::new(),
            transcript: r#"[{"from":"customer","text":"請求書が届きません"}]"#.into(),
            recording: None,
        }
    }

    #[test]
    fn history_follows_the_customer_and_search_filters() {
        let dir = std::env::temp_dir().join(format!("genkan-contacts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("genkan.db");
        let _ = std::fs::remove_file(&path);
        let database = Database::open(&path, "2026-12-01T00:00:00Z").unwrap();
        assert_eq!(database.last_contact_id().unwrap(), 0);
        database
            .save_contact(&contact(1, Some(7), "2026-12-01T01:00:00Z", "agent1"))
            .unwrap();
        database
            .save_contact(&contact(2, Some(7), "2026-12-02T01:00:00Z", "agent2"))
            .unwrap();
        database
            .save_contact(&contact(3, None, "2026-12-03T01:00:00Z", "agent1"))
            .unwrap();
        assert_eq!(database.last_contact_id().unwrap(), 3);
        let customer = CustomerRef {
            database: "demo".into(),
            table: "customers".into(),
            record_id: 7,
        };
        let history: Vec<i64> = database
            .customer_contacts(&customer, 10)
            .unwrap()
            .iter()
            .map(|row| row.id)
            .collect();
        assert_eq!(history, [2, 1]);
        assert!(database.set_contact_notes(2, "agent2", "再送済み").unwrap());
        assert!(
            !database
                .set_contact_notes(2, "agent1", "not theirs")
                .unwrap()
        );
        assert_eq!(database.contact(2).unwrap().unwrap().notes, "再送済み");
        let search = |search: ContactSearch| -> Vec<i64> {
            database
                .search_contacts(&ContactSearch {
                    limit: 50,
                    ..search
                })
                .unwrap()
                .iter()
                .map(|row| row.id)
                .collect()
        };
        assert_eq!(search(ContactSearch::default()), [3, 2, 1]);
        assert_eq!(
            search(ContactSearch {
                agent: Some("agent1".into()),
                ..ContactSearch::default()
            }),
            [3, 1]
        );
        assert_eq!(
            search(ContactSearch {
                since: Some("2026-12-02T00:00:00Z".into()),
                until: Some("2026-12-03T00:00:00Z".into()),
                ..ContactSearch::default()
            }),
            [2]
        );
        assert_eq!(
            search(ContactSearch {
                text: Some("再送".into()),
                ..ContactSearch::default()
            }),
            [2]
        );
        assert_eq!(
            search(ContactSearch {
                text: Some("100%".into()),
                ..ContactSearch::default()
            }),
            Vec::<i64>::new()
        );
        // A transcript that is not JSON is refused by the table, not stored half-right.
        let mut broken = contact(4, None, "2026-12-04T01:00:00Z", "agent1");
        broken.transcript = "not json".into();
        assert!(database.save_contact(&broken).is_err());
        assert!(database.contact(4).unwrap().is_none());
        drop(database);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
