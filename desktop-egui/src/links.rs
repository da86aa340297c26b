//! What an invitation e-mail carries: a code like `ABCD-EFGH-JKLM-NPQR` and the same code in
//! a link `nexacore://accept?code=<code>`. Users paste either (or the app is opened with the
//! link), so both read to the one code the server wants.

/// The scheme and action of the acceptance link.
pub const ACCEPT_LINK: &str = "nexacore://accept";

/// An invitation code as the server issues it: sixteen letters or digits, written in four
/// groups of four (`ABCD-EFGH-JKLM-NP2R`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteCode(String);

impl InviteCode {
    /// Reads a pasted code or acceptance link. What people do to a code when they copy or
    /// read it out (blanks instead of dashes, lower case, a trailing `.` from the mail's
    /// sentence) does not matter: the server reads codes the same lenient way, so this only
    /// refuses what cannot be one.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim().trim_end_matches('.');
        let code = match raw.strip_prefix(ACCEPT_LINK) {
            Some(rest) => link_code(rest)?,
            None => raw.to_owned(),
        };
        let chars: Vec<char> =
            code.chars().filter(|c| !(c.is_whitespace() || *c == '-')).map(|c| c.to_ascii_uppercase()).collect();
        if chars.len() != 16 || !chars.iter().all(char::is_ascii_alphanumeric) {
            return None;
        }
        let groups: Vec<String> = chars.chunks(4).map(|g| g.iter().collect()).collect();
        Some(Self(groups.join("-")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `code` parameter of the link's query (`?code=…&…`), `%2D` and `+` decoded.
fn link_code(rest: &str) -> Option<String> {
    let query = rest.trim_start_matches('/').strip_prefix('?')?;
    let raw = query.split('&').find_map(|pair| pair.strip_prefix("code="))?;
    Some(raw.replace("%2D", "-").replace("%2d", "-").replace('+', " ").replace("%20", " "))
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
        check("nexacore://accept/?lang=de&code=abcd-efgh-jklm-np2r", Some("ABCD-EFGH-JKLM-NP2R"));
        check("nexacore://accept?code=ABCD%2DEFGH%2DJKLM%2DNP2R", Some("ABCD-EFGH-JKLM-NP2R"));
        check("abcd efgh jklm np2r", Some("ABCD-EFGH-JKLM-NP2R"));
        check("ABCDEFGHJKLMNP2R", Some("ABCD-EFGH-JKLM-NP2R"));
        check("nexacore://accept?lang=de", None);
        check("ABCD-EFGH-JKLM", None);
        check("ABCD-EFGH-JKLM-NP2R-XXXX", None);
        check("ABC!-EFGH-JKLM-NP2R", None);
        check("", None);
    }
}
