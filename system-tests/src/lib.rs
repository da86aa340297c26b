//! Nothing to link: the tests live in `tests/`, the router-as-a-process in `src/bin/`. Tests that
//! need both services live here so that neither service crate depends on the other, not even
//! for its tests.
