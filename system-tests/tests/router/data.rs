//! The ERP API itself: CRUD with versions and event seqs, keyset pages, validation naming the
//! field, roles, and optimistic concurrency under real concurrency.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Stack, unique};

#[tokio::test]
async fn employees_round_trip_with_versions_and_event_seqs() {
    let stack = Stack::start().await;
    let c = stack.signup(&unique("crud-")).await;
    let created = stack
        .call(Method::POST, "/employees", &c.token)
        .json(&json!({"first_name": "Ada", "last_name": "Lovelace", "email": "Ada@Example.com", "hire_date": "2023-03-01", "job_title": "Analyst"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let seq1: i64 = created.headers()["x-event-seq"].to_str().unwrap().parse().unwrap();
    assert_eq!(created.headers()["etag"], "\"1\"");
    let emp: Value = created.json().await.unwrap();
    assert_eq!(emp["email"], "ada@example.com");
    assert_eq!(emp["status"], "active");
    assert_eq!(emp["hire_date"], "2023-03-01");
    // Bodies are written by serde, documented by poem-openapi: the two must name the same fields.
    let keys: std::collections::BTreeSet<&str> = emp.as_object().unwrap().keys().map(String::as_str).collect();
    let documented = [
        "created_at",
        "department_id",
        "email",
        "first_name",
        "hire_date",
        "id",
        "job_title",
        "last_name",
        "status",
        "updated_at",
        "version",
    ];
    // Optional fields without a value are left out, never sent as null.
    let optional = ["department_id", "job_title"];
    let required: std::collections::BTreeSet<&str> = documented.into_iter().filter(|k| !optional.contains(k)).collect();
    assert!(keys.is_superset(&required) && keys.is_subset(&documented.into()), "{keys:?}");
    assert!(emp.as_object().unwrap().values().all(|v| !v.is_null()), "no nulls: {emp}");
    for stamp in ["created_at", "updated_at"] {
        let text = emp[stamp].as_str().unwrap();
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).expect("RFC 3339");
    }
    let id = emp["id"].as_str().unwrap();

    let updated = stack
        .call(Method::PATCH, &format!("/employees/{id}"), &c.token)
        .header("If-Match", "\"1\"")
        .json(&json!({"job_title": null, "status": "on_leave"}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let seq2: i64 = updated.headers()["x-event-seq"].to_str().unwrap().parse().unwrap();
    assert_eq!(seq2, seq1 + 1);
    let emp: Value = updated.json().await.unwrap();
    assert_eq!(emp["version"], 2);
    assert_eq!(emp["job_title"], Value::Null);
    assert_eq!(emp["status"], "on_leave");

    let stale = stack
        .call(Method::PATCH, &format!("/employees/{id}"), &c.token)
        .header("If-Match", "\"1\"")
        .json(&json!({"first_name": "Augusta"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["current"]["version"], 2, "the newer record comes back");
    let stale_body = stack
        .call(Method::PATCH, &format!("/employees/{id}"), &c.token)
        .json(&json!({"first_name": "Augusta", "version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale_body.status(), 409);

    let deleted = stack.call(Method::DELETE, &format!("/employees/{id}"), &c.token).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    let seq3: i64 = deleted.headers()["x-event-seq"].to_str().unwrap().parse().unwrap();
    assert_eq!(seq3, seq2 + 1);
    let gone = stack.call(Method::GET, &format!("/employees/{id}"), &c.token).send().await.unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn lists_page_by_keyset_and_filter_and_search() {
    let stack = Stack::start().await;
    let c = stack.signup(&unique("page-")).await;
    let dept: Value = stack
        .call(Method::POST, "/departments", &c.token)
        .json(&json!({"name": "Research"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for i in 0..23 {
        let mut body = json!({"first_name": format!("P{i:02}"), "last_name": format!("L{:02}", 22 - i), "email": format!("p{i}@x.example.com"), "hire_date": "2022-01-01"});
        if i % 2 == 0 {
            body["department_id"] = dept["id"].clone();
        }
        let r = stack.call(Method::POST, "/employees", &c.token).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/employees?limit=5&cursor={c}"),
            None => "/employees?limit=5".into(),
        };
        let page: Value = stack.call(Method::GET, &path, &c.token).send().await.unwrap().json().await.unwrap();
        seen.extend(page["items"].as_array().unwrap().iter().map(|e| e["last_name"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..23).map(|i| format!("L{i:02}")).collect();
    assert_eq!(seen, expected, "every row once, in order");

    let in_dept: Value = stack
        .call(Method::GET, &format!("/employees?limit=200&department_id={}", dept["id"].as_str().unwrap()), &c.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(in_dept["items"].as_array().unwrap().len(), 12);
    let found: Value =
        stack.call(Method::GET, "/employees?q=p7@x", &c.token).send().await.unwrap().json().await.unwrap();
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let bad_cursor = stack.call(Method::GET, "/employees?cursor=garbage", &c.token).send().await.unwrap();
    assert_eq!(bad_cursor.status(), 422);
    assert_eq!(bad_cursor.json::<Value>().await.unwrap()["field"], "cursor");
}

async fn check_invalid(stack: &Stack, token: &str, body: Value, status: u16, field: &str) {
    let response = stack.call(Method::POST, "/employees", token).json(&body).send().await.unwrap();
    assert_eq!(response.status(), status, "{body}");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["field"], field, "{body} → {error}");
}

#[tokio::test]
async fn invalid_fields_get_422_naming_the_field() {
    let stack = Stack::start().await;
    let c = stack.signup(&unique("valid-")).await;
    stack.add_employee(&c.token, "taken@x.example.com").await;
    let base = json!({"first_name": "A", "last_name": "B", "email": "a@x.example.com", "hire_date": "2024-01-01"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    check_invalid(&stack, &c.token, with("first_name", json!("")), 422, "first_name").await;
    check_invalid(&stack, &c.token, without("last_name"), 422, "last_name").await;
    check_invalid(&stack, &c.token, with("email", json!("nope")), 422, "email").await;
    check_invalid(&stack, &c.token, with("email", json!("taken@x.example.com")), 409, "email").await;
    check_invalid(&stack, &c.token, with("hire_date", json!("31/12/2024")), 422, "hire_date").await;
    check_invalid(&stack, &c.token, with("status", json!("retired")), 422, "status").await;
    check_invalid(&stack, &c.token, with("department_id", json!("not-a-uuid")), 422, "department_id").await;
    check_invalid(&stack, &c.token, with("department_id", json!(uuid::Uuid::new_v4())), 422, "department_id").await;
    check_invalid(&stack, &c.token, with("first_name", json!(7)), 422, "first_name").await;
}

#[tokio::test]
async fn concurrent_updates_of_one_employee_have_exactly_one_winner() {
    let stack = Stack::start().await;
    let c = stack.signup(&unique("race-")).await;
    let emp = stack.add_employee(&c.token, "race@x.example.com").await;
    let id = emp["id"].as_str().unwrap();
    let attempts = (0..8).map(|i| {
        stack
            .call(Method::PATCH, &format!("/employees/{id}"), &c.token)
            .header("If-Match", "\"1\"")
            .json(&json!({"job_title": format!("Title {i}")}))
            .send()
    });
    let statuses: Vec<u16> =
        futures::future::join_all(attempts).await.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 412), "{statuses:?}");
    let now: Value =
        stack.call(Method::GET, &format!("/employees/{id}"), &c.token).send().await.unwrap().json().await.unwrap();
    assert_eq!(now["version"], 2);
}

#[tokio::test]
async fn staff_may_read_but_not_change_and_only_admins_delete() {
    let stack = Stack::start().await;
    let c = stack.signup(&unique("roles-")).await;
    let emp = stack.add_employee(&c.token, "someone@x.example.com").await;
    // Add a staff member and a manager directly in the catalog (invitations are a later feature).
    let mut catalog = stack.catalog().await;
    let hash = stack::control::hash_password(&secrecy::SecretString::from(PASSWORD));
    let mut tokens = Vec::new();
    for role in ["staff", "manager"] {
        let email = format!("{role}@{}.example.com", c.slug);
        let user = uuid::Uuid::now_v7();
        sqlx::query("INSERT INTO users (id, email, full_name, password_hash) VALUES ($1, $2, $3, $4)")
            .bind(user)
            .bind(&email)
            .bind(role)
            .bind(&hash)
            .execute(&mut catalog)
            .await
            .unwrap();
        sqlx::query("INSERT INTO memberships (user_id, tenant_id, role) VALUES ($1, $2::uuid, $3)")
            .bind(user)
            .bind(&c.id)
            .bind(role)
            .execute(&mut catalog)
            .await
            .unwrap();
        let login: Value = stack
            .http
            .post(format!("{}/auth/login", stack.control_plane))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(login["role"], role);
        tokens.push(login["access_token"].as_str().unwrap().to_owned());
    }
    let (staff, manager) = (&tokens[0], &tokens[1]);
    let id = emp["id"].as_str().unwrap();
    assert_eq!(stack.call(Method::GET, "/employees", staff).send().await.unwrap().status(), 200);
    let create = stack.call(Method::POST, "/departments", staff).json(&json!({"name": "Nope"})).send().await.unwrap();
    assert_eq!(create.status(), 403);
    let edit = stack
        .call(Method::PATCH, &format!("/employees/{id}"), staff)
        .json(&json!({"first_name": "N"}))
        .send()
        .await
        .unwrap();
    assert_eq!(edit.status(), 403);
    let edit = stack
        .call(Method::PATCH, &format!("/employees/{id}"), manager)
        .json(&json!({"first_name": "M"}))
        .send()
        .await
        .unwrap();
    assert_eq!(edit.status(), 200);
    assert_eq!(stack.call(Method::DELETE, &format!("/employees/{id}"), manager).send().await.unwrap().status(), 403);
    assert_eq!(stack.call(Method::DELETE, &format!("/employees/{id}"), &c.token).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_nul_byte_invalid_utf8_or_out_of_range_parameter_is_a_4xx_naming_it() {
    let stack = crate::helpers::Stack::start().await;
    let company = stack.signup(&crate::helpers::unique("nul-")).await;
    let employee = stack.add_employee(&company.token, "ada@nul.example.com").await;
    let id = employee["id"].as_str().unwrap();
    let t = &company.token;
    use reqwest::Method;
    let cases = [
        (stack.call(Method::GET, "/employees?q=%00", t), "q"),
        (stack.call(Method::GET, "/employees?q=caf%C3", t), "q"),
        (stack.call(Method::GET, "/employees?cursor=%00", t), "cursor"),
        (stack.call(Method::GET, "/employees?limit=0", t), "limit"),
        (stack.call(Method::GET, "/employees?limit=-5", t), "limit"),
        (stack.call(Method::GET, &format!("/employees/{id}%00"), t), "path"),
        (
            stack.call(Method::POST, "/employees", t).json(&serde_json::json!({
                "first_name": "A\u{0}", "last_name": "B", "email": "nul2@x.example.com", "hire_date": "2024-01-15"
            })),
            "first_name",
        ),
        (
            stack
                .call(Method::PATCH, &format!("/employees/{id}"), t)
                .json(&serde_json::json!({"version": 1, "job_title": "x\u{0}"})),
            "job_title",
        ),
        (stack.call(Method::POST, "/departments", t).json(&serde_json::json!({"name": "\u{0}"})), "name"),
    ];
    for (request, field) in cases {
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(status.is_client_error(), "{field}: {status} {body}");
        assert_eq!(body["field"], field, "{body}");
    }
}
