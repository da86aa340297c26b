//! Tenant isolation, route by route: a token of tenant A never reads, lists, updates or deletes
//! tenant B's rows, even with B's ids guessed right. Such requests answer 404, never B's data.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Stack, unique};

#[tokio::test]
async fn a_token_of_one_tenant_never_reaches_another_tenants_rows() {
    let stack = Stack::start().await;
    let a = stack.signup(&unique("iso-a-")).await;
    let b = stack.signup(&unique("iso-b-")).await;
    let a_emp = stack.add_employee(&a.token, "ann@a.example.com").await;
    let b_emp = stack.add_employee(&b.token, "bob@b.example.com").await;
    let b_id = b_emp["id"].as_str().unwrap();

    let b_dept: Value = stack
        .call(Method::POST, "/departments", &b.token)
        .json(&json!({"name": "B Secret Lab"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b_account = stack
        .call(Method::POST, "/accounts", &b.token)
        .json(&json!({"code": "9999", "name": "B Hidden Reserve", "account_type": "asset"}))
        .send()
        .await
        .unwrap();
    assert_eq!(b_account.status(), 201);

    // Reads and lists show only A's rows.
    let list: Value = stack.call(Method::GET, "/employees", &a.token).send().await.unwrap().json().await.unwrap();
    let emails: Vec<&str> = list["items"].as_array().unwrap().iter().map(|e| e["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["ann@a.example.com"]);
    let search: Value =
        stack.call(Method::GET, "/employees?q=bob", &a.token).send().await.unwrap().json().await.unwrap();
    assert!(search["items"].as_array().unwrap().is_empty());
    let depts = stack.call(Method::GET, "/departments", &a.token).send().await.unwrap().text().await.unwrap();
    assert!(!depts.contains("B Secret Lab") && !depts.contains(b_dept["id"].as_str().unwrap()));
    let accounts = stack.call(Method::GET, "/accounts", &a.token).send().await.unwrap().text().await.unwrap();
    assert!(!accounts.contains("B Hidden Reserve"));

    // Guessing B's ids right changes nothing: every route answers 404 and leaks nothing.
    let attempts = [
        stack.call(Method::GET, &format!("/employees/{b_id}"), &a.token),
        stack.call(Method::PATCH, &format!("/employees/{b_id}"), &a.token).json(&json!({"first_name": "Mallory"})),
        stack
            .call(Method::PATCH, &format!("/employees/{b_id}"), &a.token)
            .header("If-Match", "\"1\"")
            .json(&json!({"last_name": "X"})),
        stack.call(Method::DELETE, &format!("/employees/{b_id}"), &a.token),
    ];
    for attempt in attempts {
        let response = attempt.send().await.unwrap();
        assert_eq!(response.status(), 404);
        let text = response.text().await.unwrap();
        assert!(!text.contains("bob@b.example.com") && !text.contains("Hopper"), "{text}");
    }
    // Filtering by B's department finds nothing; creating in A with B's department id is refused.
    let b_dept_id = b_dept["id"].as_str().unwrap();
    let filtered: Value = stack
        .call(Method::GET, &format!("/employees?department_id={b_dept_id}"), &a.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(filtered["items"].as_array().unwrap().is_empty());
    let cross = stack
        .call(Method::POST, "/employees", &a.token)
        .json(&json!({"first_name": "X", "last_name": "Y", "email": "x@a.example.com", "hire_date": "2024-01-01", "department_id": b_dept_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 422);
    assert_eq!(cross.json::<Value>().await.unwrap()["field"], "department_id");

    // B's employee is untouched.
    let still: Value =
        stack.call(Method::GET, &format!("/employees/{b_id}"), &b.token).send().await.unwrap().json().await.unwrap();
    assert_eq!(still["first_name"], "Grace");
    assert_eq!(still["version"], 1);
    let _ = a_emp;
}
