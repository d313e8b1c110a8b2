//! FileMaker's message codes, their texts and the HTTP status the Data API answers with.
//!
//! Clients read these: python-fmrest looks only at the code, @proofkit/fmdapi and fmrest-ruby look
//! at the HTTP status first. The pairs below follow Claris's error table and what those clients
//! were seen to depend on (invalid token 401/952, bad login 401/212, FileMaker errors 500).

/// A FileMaker message code. The number on the wire is [`Code::number`], as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// 0: no error.
    Ok,
    /// -1: unknown error (something failed that the client cannot fix).
    Unknown,
    /// 9: the account's privileges do not allow this.
    InsufficientPrivileges,
    /// 10: a required part of the request is missing (e.g. the Authorization header).
    RequestedDataMissing,
    /// 101: no record with that recordId.
    RecordMissing,
    /// 102: no field with that name on the layout.
    FieldMissing,
    /// 104: no script with that name.
    ScriptMissing,
    /// 105: no layout with that name.
    LayoutMissing,
    /// 106: no table with that name.
    TableMissing,
    /// 201: a field cannot be modified.
    FieldCannotBeModified,
    /// 212: wrong account name or password.
    InvalidAccount,
    /// 214: too many failed logins; wait.
    TooManyLogins,
    /// 300: the file is locked or in use (the engine is busy).
    FileLocked,
    /// 301: a record is in use by another user.
    RecordInUse,
    /// 306: the modification id does not match.
    ModIdMismatch,
    /// 400: find criteria are empty.
    FindCriteriaEmpty,
    /// 401: no records match the request.
    NoRecordsMatch,
    /// 404: the sort order is invalid.
    SortOrderInvalid,
    /// 504: a value is not unique although the field requires it.
    NotUnique,
    /// 508: a find criterion is not valid for its field.
    InvalidFindValue,
    /// 509: a field requires a valid value.
    FieldRequiresValidValue,
    /// 511: a value exceeds the field's maximum size.
    ValueTooLarge,
    /// 802: the database cannot be opened.
    UnableToOpenFile,
    /// 952: the Data API token is invalid or expired.
    InvalidToken,
    /// 956: too many Data API sessions.
    TooManySessions,
    /// 958: a required parameter is missing.
    ParameterMissing,
    /// 960: a parameter is invalid.
    ParameterInvalid,
    /// 1408: an SQL statement failed (FileMaker's ODBC "extended error").
    SqlError,
    /// 1710: the JSON body is not valid JSON.
    InvalidJson,
}

impl Code {
    /// The number sent in `messages[0].code`.
    pub fn number(self) -> i32 {
        match self {
            Self::Ok => 0,
            Self::Unknown => -1,
            Self::InsufficientPrivileges => 9,
            Self::RequestedDataMissing => 10,
            Self::RecordMissing => 101,
            Self::FieldMissing => 102,
            Self::ScriptMissing => 104,
            Self::LayoutMissing => 105,
            Self::TableMissing => 106,
            Self::FieldCannotBeModified => 201,
            Self::InvalidAccount => 212,
            Self::TooManyLogins => 214,
            Self::FileLocked => 300,
            Self::RecordInUse => 301,
            Self::ModIdMismatch => 306,
            Self::FindCriteriaEmpty => 400,
            Self::NoRecordsMatch => 401,
            Self::SortOrderInvalid => 404,
            Self::NotUnique => 504,
            Self::InvalidFindValue => 508,
            Self::FieldRequiresValidValue => 509,
            Self::ValueTooLarge => 511,
            Self::UnableToOpenFile => 802,
            Self::InvalidToken => 952,
            Self::TooManySessions => 956,
            Self::ParameterMissing => 958,
            Self::ParameterInvalid => 960,
            Self::SqlError => 1408,
            Self::InvalidJson => 1710,
        }
    }

    /// FileMaker's text for the code.
    pub fn message(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Unknown => "Unknown error",
            Self::InsufficientPrivileges => "Insufficient privileges",
            Self::RequestedDataMissing => "Requested data is missing",
            Self::RecordMissing => "Record is missing",
            Self::FieldMissing => "Field is missing",
            Self::ScriptMissing => "Script is missing",
            Self::LayoutMissing => "Layout is missing",
            Self::TableMissing => "Table is missing",
            Self::FieldCannotBeModified => "Field cannot be modified",
            Self::InvalidAccount => "Invalid user account and/or password; please try again",
            Self::TooManyLogins => "Too many login attempts",
            Self::FileLocked => "File is locked or in use",
            Self::RecordInUse => "Record is in use by another user",
            Self::ModIdMismatch => "Record modification ID does not match",
            Self::FindCriteriaEmpty => "Find criteria are empty",
            Self::NoRecordsMatch => "No records match the request",
            Self::SortOrderInvalid => "Sort order is invalid",
            Self::NotUnique => {
                "Value in field is not unique, as required in validation entry options"
            }
            Self::InvalidFindValue => "Invalid value entered in Find mode",
            Self::FieldRequiresValidValue => "Field requires a valid value",
            Self::ValueTooLarge => "Value in field exceeds maximum field size",
            Self::UnableToOpenFile => "Unable to open file",
            Self::InvalidToken => "Invalid FileMaker Data API token (*)",
            Self::TooManySessions => "Maximum number of database sessions exceeded (*)",
            Self::ParameterMissing => "Parameter missing (*)",
            Self::ParameterInvalid => "Parameter is invalid",
            Self::SqlError => "Extended error (SQL)",
            Self::InvalidJson => "JSON input isn't syntactically valid",
        }
    }

    /// The HTTP status the Data API answers with.
    pub fn http_status(self) -> u16 {
        match self {
            Self::Ok => 200,
            Self::InvalidAccount | Self::InvalidToken | Self::TooManyLogins => 401,
            Self::RequestedDataMissing
            | Self::ParameterMissing
            | Self::ParameterInvalid
            | Self::InvalidJson => 400,
            Self::InsufficientPrivileges => 403,
            Self::TooManySessions => 503,
            _ => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_clients_depend_on_have_their_statuses() {
        assert_eq!(
            (
                Code::InvalidToken.number(),
                Code::InvalidToken.http_status()
            ),
            (952, 401)
        );
        assert_eq!(
            (
                Code::InvalidAccount.number(),
                Code::InvalidAccount.http_status()
            ),
            (212, 401)
        );
        assert_eq!(
            (
                Code::NoRecordsMatch.number(),
                Code::NoRecordsMatch.http_status()
            ),
            (401, 500)
        );
        assert_eq!(
            (Code::RecordInUse.number(), Code::RecordInUse.http_status()),
            (301, 500)
        );
        assert_eq!(
            (
                Code::ModIdMismatch.number(),
                Code::ModIdMismatch.http_status()
            ),
            (306, 500)
        );
        assert_eq!(Code::Ok.http_status(), 200);
    }
}
