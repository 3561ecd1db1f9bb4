//! Build script: tells the integration tests whether they have a PostgreSQL server
//! (`TEST_DATABASE_URL`), so that without one the PostgreSQL half of the suite is reported
//! as ignored instead of passing without running (`tests/it/support.rs`, `db_tests!`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(test_postgres)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=REQUIRE_POSTGRES");
    let url = std::env::var("TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty());
    if url {
        println!("cargo::rustc-cfg=test_postgres");
    } else if std::env::var_os("REQUIRE_POSTGRES").is_some() {
        panic!(
            "REQUIRE_POSTGRES is set but TEST_DATABASE_URL is not: the PostgreSQL tests cannot run"
        );
    }
}
