//! Finding the server binaries on this machine.

use local_postgres::find_binaries;

#[test]
fn server_binaries_are_found_with_their_major_version() {
    let binaries = find_binaries().unwrap();
    assert!(binaries.initdb().is_file());
    assert!(binaries.pg_ctl().is_file());
    assert!(binaries.postgres().is_file());
    assert!(binaries.major_version() >= 13, "{}", binaries.major_version());
}
