//! Layouts: the named views of a table that the Data API and the records page work through.
//!
//! A layout shows some fields of one table and may carry portals: rows of a related table whose
//! foreign key equals a key of the record. As in FileMaker, every table also has a layout of its
//! own name showing all its fields. Names from a request are resolved here against the layout,
//! so SQL only ever sees columns the layout defines, quoted, and values only as parameters.

use crate::Code;
use crate::find::{FieldKind, FindRequest};

/// A field as the layout shows it: the column of the same name and how it compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field (and column) name.
    pub name: String,
    /// Text or number.
    pub kind: FieldKind,
}

/// Related rows shown with each record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    /// The portal's name (unique on its layout); the key in `portalData`.
    pub name: String,
    /// The related table.
    pub table: String,
    /// The related table's column that refers to the record.
    pub foreign_key: String,
    /// The record's column it refers to (`ROWID` unless said otherwise).
    pub local_key: String,
    /// The related table's fields shown, sent as `table::field`.
    pub fields: Vec<Field>,
}

/// A resolved layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Layout name.
    pub name: String,
    /// Its table.
    pub table: String,
    /// Fields shown, in order.
    pub fields: Vec<Field>,
    /// Portals, in order.
    pub portals: Vec<Portal>,
}

/// A layout as written down (in the database or the configuration), before it is checked
/// against the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutDefinition {
    /// Layout name.
    pub name: String,
    /// Its table.
    pub table: String,
    /// Fields to show; `None` shows every column.
    pub fields: Option<Vec<String>>,
    /// Portals.
    pub portals: Vec<PortalDefinition>,
}

/// A portal as written down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalDefinition {
    /// Portal name.
    pub name: String,
    /// Related table.
    pub table: String,
    /// Column of the related table holding the key.
    pub foreign_key: String,
    /// Column of the layout's table it matches (`None`: `ROWID`).
    pub local_key: Option<String>,
    /// Fields of the related table to show; `None` shows all.
    pub fields: Option<Vec<String>>,
}

/// One sort criterion as the Data API gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortRequest {
    /// Field name.
    pub field: String,
    /// `ascend`, `descend` (FileMaker also names value lists here; genkan has none).
    pub order: String,
}

/// One find request as the Data API gives it: `(field name, criterion)` pairs and `omit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindByName {
    /// Criteria by field name.
    pub criteria: Vec<(String, String)>,
    /// Whether this request omits.
    pub omit: bool,
}

/// Quotes an identifier for SQL (`"` doubled inside).
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

impl Layout {
    /// The field of that name on this layout.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.name == name)
    }

    /// The portal of that name.
    pub fn portal(&self, name: &str) -> Option<&Portal> {
        self.portals.iter().find(|portal| portal.name == name)
    }

    /// Resolves find requests by field name into requests over quoted columns.
    /// Unknown fields are 102 (Field is missing), as FileMaker answers.
    pub fn find_requests(&self, requests: &[FindByName]) -> Result<Vec<FindRequest>, Code> {
        requests
            .iter()
            .map(|request| {
                let criteria = request
                    .criteria
                    .iter()
                    .map(|(name, criterion)| {
                        let field = self.field(name).ok_or(Code::FieldMissing)?;
                        Ok((quote(&field.name), field.kind, criterion.clone()))
                    })
                    .collect::<Result<Vec<_>, Code>>()?;
                Ok(FindRequest {
                    criteria,
                    omit: request.omit,
                })
            })
            .collect()
    }

    /// The `ORDER BY` clause for a sort (record order when empty). Unknown fields are 102, an
    /// order other than ascend/descend is 404 (Sort order is invalid).
    pub fn order_by(&self, sort: &[SortRequest]) -> Result<String, Code> {
        let mut terms = Vec::with_capacity(sort.len() + 1);
        for criterion in sort {
            let field = self.field(&criterion.field).ok_or(Code::FieldMissing)?;
            let direction = match criterion.order.as_str() {
                "" | "ascend" => "ASC",
                "descend" => "DESC",
                _ => return Err(Code::SortOrderInvalid),
            };
            let collate = match field.kind {
                FieldKind::Text => " COLLATE NOCASE",
                FieldKind::Number => "",
            };
            terms.push(format!("{}{collate} {direction}", quote(&field.name)));
        }
        terms.push("ROWID ASC".to_owned());
        Ok(format!("ORDER BY {}", terms.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customers() -> Layout {
        Layout {
            name: "customers".into(),
            table: "customers".into(),
            fields: vec![
                Field {
                    name: "name".into(),
                    kind: FieldKind::Text,
                },
                Field {
                    name: "age".into(),
                    kind: FieldKind::Number,
                },
            ],
            portals: vec![],
        }
    }

    #[test]
    fn sort_resolves_fields_and_refuses_the_rest() {
        let layout = customers();
        let sort = |field: &str, order: &str| {
            layout.order_by(&[SortRequest {
                field: field.into(),
                order: order.into(),
            }])
        };
        assert_eq!(
            sort("age", "descend").unwrap(),
            "ORDER BY \"age\" DESC, ROWID ASC"
        );
        assert_eq!(
            sort("name", "ascend").unwrap(),
            "ORDER BY \"name\" COLLATE NOCASE ASC, ROWID ASC"
        );
        assert_eq!(
            sort("name; DROP TABLE x", "ascend"),
            Err(Code::FieldMissing)
        );
        assert_eq!(sort("name", "sideways"), Err(Code::SortOrderInvalid));
    }

    #[test]
    fn find_names_only_layout_fields() {
        let layout = customers();
        let request = FindByName {
            criteria: vec![("name".into(), "Sato".into())],
            omit: false,
        };
        let resolved = layout.find_requests(&[request]).unwrap();
        assert_eq!(resolved[0].criteria[0].0, "\"name\"");
        let bad = FindByName {
            criteria: vec![("\"x\" OR 1=1".into(), "a".into())],
            omit: false,
        };
        assert_eq!(
            layout.find_requests(&[bad]).unwrap_err(),
            Code::FieldMissing
        );
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
