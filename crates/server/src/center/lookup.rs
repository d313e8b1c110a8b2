//! The customer lookup behind the flow's `look_up_customer` block and the screen pop: find the
//! customer record by the caller's number or the chat's address in a configured layout of a
//! records database.
//!
//! Numbers are compared in E.164, because nobody types them the same way twice: the store is
//! asked for records whose phone fields end with the number's last four digits (a FileMaker
//! find, so the fields are only ever bound parameters), and each candidate's fields are then
//! normalised and compared here. Addresses compare whole, without regard to case.

use records::{Actor, Code, Datum, FindByName, Query, Range, Store, StoreError};

use super::phone;

/// Where customers are, and which of their fields mean what.
#[derive(Debug, Clone)]
pub struct CustomerSource {
    /// Layout of the customers table (its fields are what the screen pop shows).
    pub layout: String,
    /// Fields holding phone numbers.
    pub phone_fields: Vec<String>,
    /// Fields holding e-mail addresses.
    pub email_fields: Vec<String>,
    /// The field with the customer's name.
    pub name_field: String,
    /// The field with the login name of their agent, if any.
    pub assigned_agent_field: Option<String>,
    /// Region of national numbers.
    pub region: phonenumber::country::Id,
}

/// A customer found.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundCustomer {
    /// The record's id.
    pub record_id: i64,
    /// Their name.
    pub name: String,
    /// Their agent, if the record names one.
    pub assigned_agent: Option<String>,
    /// The layout's fields, in order, as text.
    pub fields: Vec<(String, String)>,
}

/// Candidates read for one number: more than this many records ending in the same four digits
/// and the lookup takes the first match among them.
const CANDIDATES: u64 = 200;

fn text(datum: &Datum) -> String {
    match datum {
        Datum::Null | Datum::Blob(_) => String::new(),
        Datum::Integer(number) => number.to_string(),
        Datum::Real(number) => number.to_string(),
        Datum::Text(text) => text.clone(),
    }
}

impl CustomerSource {
    /// The customer whose record holds `from` (a number or an address); `None` if nobody's
    /// does, or `from` is neither.
    pub fn look_up(
        &self,
        store: &impl Store,
        from: &str,
    ) -> Result<Option<FoundCustomer>, StoreError> {
        let layout = store.layout(&self.layout)?;
        let (requests, wanted) = if let Some(e164) = phone::normalize(from, self.region) {
            let suffix = phone::last_digits(&e164);
            let requests: Vec<FindByName> = self
                .phone_fields
                .iter()
                .map(|field| FindByName {
                    criteria: vec![(field.clone(), format!("*{suffix}"))],
                    omit: false,
                })
                .collect();
            (requests, Wanted::Phone(e164))
        } else if from.contains('@') {
            let address = from.trim().to_lowercase();
            let requests: Vec<FindByName> = self
                .email_fields
                .iter()
                .map(|field| FindByName {
                    criteria: vec![(field.clone(), format!("=={}", escape_find(&address)))],
                    omit: false,
                })
                .collect();
            (requests, Wanted::Email(address))
        } else {
            return Ok(None);
        };
        if requests.is_empty() {
            return Ok(None);
        }
        let query = Query {
            find: Some(requests),
            sort: Vec::new(),
            range: Some(Range {
                offset: 1,
                limit: CANDIDATES,
            }),
            portals: Some(Vec::new()),
        };
        let found = match store.query(&layout, &query) {
            Ok(found) => found,
            Err(error) if error.code() == Code::NoRecordsMatch => return Ok(None),
            Err(error) => return Err(error),
        };
        let fields_named = |record: &records::Record, names: &[String]| -> Vec<String> {
            record
                .fields
                .iter()
                .filter(|(name, _)| names.contains(name))
                .map(|(_, value)| text(value))
                .collect()
        };
        let matching = found.records.iter().find(|record| match &wanted {
            Wanted::Phone(e164) => fields_named(record, &self.phone_fields)
                .iter()
                .any(|value| {
                    phone::normalize(value, self.region).as_deref() == Some(e164.as_str())
                }),
            Wanted::Email(address) => fields_named(record, &self.email_fields)
                .iter()
                .any(|value| value.trim().to_lowercase() == *address),
        });
        Ok(matching.map(|record| self.customer(record)))
    }

    /// The layout's field names: what a "new customer" form asks for.
    pub fn field_names(&self, store: &impl Store) -> Result<Vec<String>, StoreError> {
        Ok(store
            .layout(&self.layout)?
            .fields
            .into_iter()
            .map(|field| field.name)
            .collect())
    }

    /// Creates the record of a customer nobody knew, from the agent's form: only the layout's
    /// fields are taken, and the number or address the contact came from goes into the first
    /// phone or e-mail field if the agent left it empty, so that the next contact finds them.
    pub fn create(
        &self,
        store: &impl Store,
        actor: Actor<'_>,
        from: &str,
        given: &[(String, String)],
    ) -> Result<FoundCustomer, StoreError> {
        let layout = store.layout(&self.layout)?;
        let mut fields: Vec<(String, Datum)> = given
            .iter()
            .filter(|(name, _)| layout.fields.iter().any(|field| field.name == *name))
            .map(|(name, value)| (name.clone(), value.trim().chars().take(1_000).collect()))
            .filter(|(_, value): &(String, String)| !value.is_empty())
            .map(|(name, value)| (name, Datum::Text(value)))
            .collect();
        let from_field = if phone::normalize(from, self.region).is_some() {
            self.phone_fields.first()
        } else if from.contains('@') {
            self.email_fields.first()
        } else {
            None
        };
        if let Some(field) = from_field
            && layout.fields.iter().any(|known| known.name == *field)
            && !fields.iter().any(|(name, _)| name == field)
        {
            fields.push((field.clone(), Datum::Text(from.trim().to_owned())));
        }
        let (record_id, _) = store.create(actor, &layout, &fields)?;
        let record = store.record(&layout, record_id, Some(&[]))?;
        Ok(self.customer(&record))
    }

    fn customer(&self, record: &records::Record) -> FoundCustomer {
        let field = |name: &str| {
            record
                .fields
                .iter()
                .find(|(field, _)| field == name)
                .map(|(_, value)| text(value))
        };
        FoundCustomer {
            record_id: record.record_id,
            name: field(&self.name_field).unwrap_or_default(),
            assigned_agent: self
                .assigned_agent_field
                .as_deref()
                .and_then(field)
                .filter(|agent| !agent.trim().is_empty()),
            fields: record
                .fields
                .iter()
                .map(|(name, value)| (name.clone(), text(value)))
                .collect(),
        }
    }
}

enum Wanted {
    Phone(String),
    Email(String),
}

/// FileMaker's find operators in an address stand for themselves.
fn escape_find(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(
            character,
            '\\' | '*' | '@' | '#' | '"' | '=' | '<' | '>' | '!' | '?' | '~'
        ) {
            out.push('\\');
        }
        out.push(character);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (store_sqlite::RecordsDb, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("genkan-lookup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = store_sqlite::RecordsDb::open("demo", &dir.join("demo.sqlite"), 1).unwrap();
        db.run_setup(
            "CREATE TABLE customers (name TEXT, phone TEXT, mobile TEXT, email TEXT, assigned_agent TEXT);
             INSERT INTO customers VALUES
               ('佐藤 花子', '03-1234-5678', '', 'Hanako.Sato@example.jp', 'agent1'),
               ('鈴木 一郎', '(06) 6123-5678', '090-1111-2222', 'ichiro@example.jp', ''),
               ('高橋 次郎', '+81 3 9999 0000', '', 'jiro@example.jp', 'agent2');",
        )
        .unwrap();
        (db, dir)
    }

    fn source() -> CustomerSource {
        CustomerSource {
            layout: "customers".into(),
            phone_fields: vec!["phone".into(), "mobile".into()],
            email_fields: vec!["email".into()],
            name_field: "name".into(),
            assigned_agent_field: Some("assigned_agent".into()),
            region: phone::region("JP").unwrap(),
        }
    }

    #[test]
    fn numbers_match_in_e164_and_addresses_whole_without_case() {
        let (db, dir) = database();
        let source = source();
        let found = |from: &str| source.look_up(&db, from).unwrap();
        // Two records end in 5678; only one is this number.
        let hanako = found("+81312345678").unwrap();
        assert_eq!((hanako.record_id, hanako.name.as_str()), (1, "佐藤 花子"));
        assert_eq!(hanako.assigned_agent.as_deref(), Some("agent1"));
        assert!(
            hanako
                .fields
                .contains(&("email".into(), "Hanako.Sato@example.jp".into()))
        );
        assert_eq!(found("0661235678").unwrap().record_id, 2);
        // The second phone field, and an empty assigned agent is none.
        let ichiro = found("+819011112222").unwrap();
        assert_eq!((ichiro.record_id, ichiro.assigned_agent), (2, None));
        assert_eq!(found("03-9999-0000").unwrap().record_id, 3);
        assert_eq!(found("hanako.sato@EXAMPLE.jp").unwrap().record_id, 1);
        assert_eq!(found("+81312340000"), None);
        assert_eq!(found("nobody@example.jp"), None);
        assert_eq!(
            found("*@example.jp"),
            None,
            "operators in an address are literal"
        );
        assert_eq!(found("anonymous"), None);
        drop(db);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
