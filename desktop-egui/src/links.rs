//! What an invitation e-mail carries: a code like `ABCD-EFGH-JKLM-NPQR` and the same code in
//! a link `nexacore://accept?code=<code>`. Users paste either (or the app is opened with the
//! link), so both read to the one code the server wants.

/// The scheme and action of the acceptance link.
pub const ACCEPT_LINK: &str = "nexacore://accept";

/// An invitation code as the server issues it: four groups of four letters or digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteCode(String);

impl InviteCode {
    /// Reads a pasted code or acceptance link; surrounding blanks and a trailing `.` (mail
    /// clients add them when copying) do not matter. Letters keep their case: the code is
    /// the server's, sent back as written.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim().trim_end_matches('.');
        let code = match raw.strip_prefix(ACCEPT_LINK) {
            Some(rest) => link_code(rest)?,
            None => raw,
        };
        let groups: Vec<&str> = code.split('-').collect();
        let well_formed =
            groups.len() == 4 && groups.iter().all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_alphanumeric()));
        well_formed.then(|| Self(code.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `code` parameter of the link's query (`?code=…&…`).
fn link_code(rest: &str) -> Option<&str> {
    let query = rest.trim_start_matches('/').strip_prefix('?')?;
    query.split('&').find_map(|pair| pair.strip_prefix("code="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_from_what_users_paste() {
        let check = |raw: &str, expected: Option<&str>| {
            assert_eq!(InviteCode::parse(raw).as_ref().map(InviteCode::as_str), expected, "{raw:?}");
        };
        check("ABCD-EFGH-JKLM-NP2R", Some("ABCD-EFGH-JKLM-NP2R"));
        check("  ABCD-EFGH-JKLM-NP2R.\n", Some("ABCD-EFGH-JKLM-NP2R"));
        check("nexacore://accept?code=ABCD-EFGH-JKLM-NP2R", Some("ABCD-EFGH-JKLM-NP2R"));
        check("nexacore://accept/?lang=de&code=abcd-efgh-jklm-np2r", Some("abcd-efgh-jklm-np2r"));
        check("nexacore://accept?lang=de", None);
        check("ABCD-EFGH-JKLM", None);
        check("ABCD-EFGH-JKLM-NP2R-XXXX", None);
        check("ABCD EFGH JKLM NP2R", None);
        check("ABC!-EFGH-JKLM-NP2R", None);
        check("", None);
    }
}
