//! The administration pages: users and groups, the same operations as `genkan user` and
//! `genkan group`, for members of the `admin` group.
//!
//! Every form carries the session's CSRF value; every change goes through [`crate::accounts`],
//! so it is checked and audited with the administrator's name and address.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use gateway::gate::{Identity, html_escape as escape};
use serde::Deserialize;

use crate::accounts::{Accounts, Actor};
use crate::auth::{Auth, Session};
use crate::pages::{Lang, page};

struct Words {
    title: &'static str,
    users: &'static str,
    groups: &'static str,
    name: &'static str,
    member_of: &'static str,
    state: &'static str,
    disabled: &'static str,
    app: &'static str,
    add_user: &'static str,
    groups_hint: &'static str,
    add: &'static str,
    disable: &'static str,
    enable: &'static str,
    reset_password: &'static str,
    reset_app: &'static str,
    add_group: &'static str,
    description: &'static str,
    membership: &'static str,
    put_in: &'static str,
    take_out: &'static str,
    one_time: &'static str,
    done: &'static str,
    only_admins: &'static str,
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::Ja => Words {
            title: "管理",
            users: "ユーザー",
            groups: "グループ",
            name: "名前",
            member_of: "所属グループ",
            state: "状態",
            disabled: "無効",
            app: "認証アプリ登録済み",
            add_user: "ユーザーを追加",
            groups_hint: "グループ（カンマ区切り）",
            add: "追加",
            disable: "無効にする",
            enable: "有効にする",
            reset_password: "パスワードを再発行",
            reset_app: "認証アプリを解除",
            add_group: "グループを追加",
            description: "説明",
            membership: "グループへの所属",
            put_in: "所属させる",
            take_out: "外す",
            one_time: "一時パスワード（この画面でのみ表示されます。初回サインイン時に変更が必要です）",
            done: "変更しました。",
            only_admins: "管理ページは admin グループのメンバーだけが使えます。",
        },
        Lang::En => Words {
            title: "Administration",
            users: "Users",
            groups: "Groups",
            name: "Name",
            member_of: "Groups",
            state: "State",
            disabled: "disabled",
            app: "authenticator app",
            add_user: "Add a user",
            groups_hint: "Groups (comma-separated)",
            add: "Add",
            disable: "Disable",
            enable: "Enable",
            reset_password: "New password",
            reset_app: "Remove app",
            add_group: "Add a group",
            description: "Description",
            membership: "Group membership",
            put_in: "Put in",
            take_out: "Take out",
            one_time: "One-time password (shown only here; it must be changed at first sign-in)",
            done: "Done.",
            only_admins: "Only members of the admin group may use the administration pages.",
        },
    }
}

/// The session of an administrator; `None` for everyone else.
pub(crate) fn administrator(
    auth: &Auth,
    headers: &HeaderMap,
    identity: Option<&Identity>,
) -> Option<(Session, Actor)> {
    let session = auth
        .session(headers)
        .filter(|session| session.row.groups.iter().any(|group| group == "admin"))?;
    let actor = Actor {
        name: session.row.user.clone(),
        source: identity.map(|identity| identity.source.to_string()),
    };
    Some((session, actor))
}

/// The answer to anyone who is not an administrator.
pub(crate) fn not_admin(headers: &HeaderMap) -> Response {
    let lang = Lang::from_headers(headers);
    let w = words(lang);
    page(
        lang,
        StatusCode::FORBIDDEN,
        w.title,
        &format!("<p>{}</p>", w.only_admins),
    )
}

/// GET /_genkan/admin
pub async fn overview(
    State(auth): State<Arc<Auth>>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
) -> Response {
    let identity = identity.map(|Extension(identity)| identity);
    match administrator(&auth, &headers, identity.as_ref()) {
        Some((session, _)) => render(&auth, &headers, &session, None, StatusCode::OK),
        None => not_admin(&headers),
    }
}

fn render(
    auth: &Auth,
    headers: &HeaderMap,
    session: &Session,
    message: Option<(bool, String)>,
    status: StatusCode,
) -> Response {
    let lang = Lang::from_headers(headers);
    let w = words(lang);
    let csrf = escape(&session.row.csrf_token);
    let Ok((users, groups)) = auth
        .database()
        .and_then(|db| Ok((db.users()?, db.groups()?)))
    else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let message = message.map_or_else(String::new, |(ok, text)| {
        let class = if ok { "notice" } else { "error" };
        format!("<p class=\"{class}\" role=\"status\">{text}</p>")
    });
    let hidden = format!("<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">");
    let mut rows = String::new();
    for user in &users {
        let name = escape(&user.name);
        let mut state = Vec::new();
        if user.disabled {
            state.push(w.disabled);
        }
        if user.totp_enrolled {
            state.push(w.app);
        }
        let toggle = if user.disabled {
            ("enable", w.enable)
        } else {
            ("disable", w.disable)
        };
        rows.push_str(&format!(
            "<tr><td>{name}</td><td>{groups}</td><td>{state}</td><td class=\"actions\">\
<form method=\"post\" action=\"/_genkan/admin/user\">{hidden}<input type=\"hidden\" name=\"name\" value=\"{name}\">\
<button name=\"action\" value=\"{toggle_action}\">{toggle_label}</button>\
<button name=\"action\" value=\"reset-password\">{reset_password}</button>\
<button name=\"action\" value=\"reset-totp\">{reset_app}</button></form></td></tr>",
            groups = escape(&user.groups.join(", ")),
            state = state.join(", "),
            toggle_action = toggle.0,
            toggle_label = toggle.1,
            reset_password = w.reset_password,
            reset_app = w.reset_app,
        ));
    }
    let group_rows: String = groups
        .iter()
        .map(|group| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&group.name),
                escape(&group.description),
                escape(&group.members.join(", "))
            )
        })
        .collect();
    let group_options: String = groups
        .iter()
        .map(|group| format!("<option>{}</option>", escape(&group.name)))
        .collect();
    let body = format!(
        "<h1>{title}</h1>{message}<p><a href=\"/_genkan/admin/policy\">{policy}</a></p>\
<h2>{users_title}</h2><table><thead><tr><th>{name}</th><th>{member_of}</th><th>{state}</th><th></th></tr></thead><tbody>{rows}</tbody></table>\
<h3>{add_user}</h3><form method=\"post\" action=\"/_genkan/admin/users\" class=\"inline\">{hidden}\
<label>{name}<input name=\"name\" maxlength=\"64\" required></label>\
<label>{groups_hint}<input name=\"groups\" maxlength=\"400\"></label><button type=\"submit\">{add}</button></form>\
<h2>{groups_title}</h2><table><thead><tr><th>{name}</th><th>{description}</th><th>{users_title}</th></tr></thead><tbody>{group_rows}</tbody></table>\
<h3>{add_group}</h3><form method=\"post\" action=\"/_genkan/admin/groups\" class=\"inline\">{hidden}\
<label>{name}<input name=\"name\" maxlength=\"64\" required></label>\
<label>{description}<input name=\"description\" maxlength=\"200\"></label><button type=\"submit\">{add}</button></form>\
<h3>{membership}</h3><form method=\"post\" action=\"/_genkan/admin/members\" class=\"inline\">{hidden}\
<label>{users_title}<input name=\"user\" maxlength=\"64\" required></label>\
<label>{groups_title}<select name=\"group\">{group_options}</select></label>\
<button name=\"action\" value=\"add\">{put_in}</button> <button name=\"action\" value=\"remove\">{take_out}</button></form>",
        title = w.title,
        policy = policy_words(lang).title,
        users_title = w.users,
        groups_title = w.groups,
        name = w.name,
        member_of = w.member_of,
        state = w.state,
        add_user = w.add_user,
        groups_hint = w.groups_hint,
        add = w.add,
        description = w.description,
        add_group = w.add_group,
        membership = w.membership,
        put_in = w.put_in,
        take_out = w.take_out,
    );
    page(lang, status, w.title, &body)
}

/// Runs one account operation for an administrator, off the request threads (hashing a new
/// password takes tens of milliseconds), and shows the page again with the outcome.
async fn change<F>(
    auth: Arc<Auth>,
    identity: Option<Identity>,
    headers: HeaderMap,
    csrf: String,
    operation: F,
) -> Response
where
    F: FnOnce(&mut Accounts<'_>) -> anyhow::Result<Option<String>> + Send + 'static,
{
    let Some((session, actor)) = administrator(&auth, &headers, identity.as_ref()) else {
        return not_admin(&headers);
    };
    if let Some(refusal) = session.csrf_refusal(&csrf) {
        return refusal;
    }
    let worker = Arc::clone(&auth);
    let outcome = tokio::task::spawn_blocking(move || {
        let mut database = worker.database()?;
        let mut accounts = Accounts::new(&mut database, actor);
        operation(&mut accounts)
    })
    .await
    .unwrap_or_else(|error| Err(anyhow::anyhow!("the operation stopped: {error}")));
    let w = words(Lang::from_headers(&headers));
    match outcome {
        Ok(Some(password)) => {
            let text = format!(
                "{}: <code id=\"one-time-password\">{}</code>",
                w.one_time,
                escape(&password)
            );
            render(
                &auth,
                &headers,
                &session,
                Some((true, text)),
                StatusCode::OK,
            )
        }
        Ok(None) => render(
            &auth,
            &headers,
            &session,
            Some((true, w.done.to_owned())),
            StatusCode::OK,
        ),
        Err(error) => render(
            &auth,
            &headers,
            &session,
            Some((false, escape(&format!("{error:#}")))),
            StatusCode::BAD_REQUEST,
        ),
    }
}

/// Add-user form.
#[derive(Deserialize)]
pub struct AddUser {
    csrf: String,
    name: String,
    groups: Option<String>,
}

/// POST /_genkan/admin/users
pub async fn add_user(
    State(auth): State<Arc<Auth>>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
    Form(form): Form<AddUser>,
) -> Response {
    let groups: Vec<String> = form
        .groups
        .unwrap_or_default()
        .split(',')
        .map(|group| group.trim().to_owned())
        .filter(|group| !group.is_empty())
        .collect();
    let name = form.name.trim().to_owned();
    change(
        auth,
        identity.map(|Extension(i)| i),
        headers,
        form.csrf,
        move |accounts| accounts.add_user(&name, &groups, None),
    )
    .await
}

/// Per-user buttons.
#[derive(Deserialize)]
pub struct UserAction {
    csrf: String,
    name: String,
    action: String,
}

/// POST /_genkan/admin/user
pub async fn user_action(
    State(auth): State<Arc<Auth>>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
    Form(form): Form<UserAction>,
) -> Response {
    let name = form.name;
    let action = form.action;
    change(
        auth,
        identity.map(|Extension(i)| i),
        headers,
        form.csrf,
        move |accounts| match action.as_str() {
            "disable" => accounts.set_disabled(&name, true).map(|()| None),
            "enable" => accounts.set_disabled(&name, false).map(|()| None),
            "reset-password" => accounts.set_password(&name, None),
            "reset-totp" => accounts.reset_totp(&name).map(|()| None),
            other => Err(anyhow::anyhow!("unknown action `{other}`")),
        },
    )
    .await
}

/// Add-group form.
#[derive(Deserialize)]
pub struct AddGroup {
    csrf: String,
    name: String,
    description: Option<String>,
}

/// POST /_genkan/admin/groups
pub async fn add_group(
    State(auth): State<Arc<Auth>>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
    Form(form): Form<AddGroup>,
) -> Response {
    let name = form.name.trim().to_owned();
    let description = form.description.unwrap_or_default();
    change(
        auth,
        identity.map(|Extension(i)| i),
        headers,
        form.csrf,
        move |accounts| accounts.add_group(&name, &description).map(|()| None),
    )
    .await
}

/// Membership form.
#[derive(Deserialize)]
pub struct Membership {
    csrf: String,
    group: String,
    user: String,
    action: String,
}

/// POST /_genkan/admin/members
pub async fn membership(
    State(auth): State<Arc<Auth>>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
    Form(form): Form<Membership>,
) -> Response {
    let (group, user, add) = (
        form.group,
        form.user.trim().to_owned(),
        form.action == "add",
    );
    change(
        auth,
        identity.map(|Extension(i)| i),
        headers,
        form.csrf,
        move |accounts| accounts.set_member(&group, &user, add).map(|()| None),
    )
    .await
}

struct PolicyWords {
    title: &'static str,
    hint: &'static str,
    save: &'static str,
    saved: &'static str,
    in_force: &'static str,
}

fn policy_words(lang: Lang) -> PolicyWords {
    match lang {
        Lang::Ja => PolicyWords {
            title: "アクセス規則",
            hint: "設定ファイルの [policy] と同じ書き方で規則を追加できます（[[rule]]、holidays、[capabilities]）。設定ファイルの規則のあとに評価されます。保存前に検査され、誤りがあれば規則名と項目を示します。",
            save: "検査して保存",
            saved: "保存しました。次のリクエストから適用されます。",
            in_force: "適用中の規則の数",
        },
        Lang::En => PolicyWords {
            title: "Access rules",
            hint: "Add rules written as under [policy] in the config file ([[rule]], holidays, [capabilities]). They are evaluated after the config file's rules. They are checked before saving; a mistake is reported with the rule and field.",
            save: "Check and save",
            saved: "Saved. The rules apply from the next request.",
            in_force: "Rules in force",
        },
    }
}

fn policy_page(
    auth: &Auth,
    headers: &HeaderMap,
    session: &Session,
    text: &str,
    message: Option<(bool, String)>,
    status: StatusCode,
) -> Response {
    let lang = Lang::from_headers(headers);
    let w = policy_words(lang);
    let message = message.map_or_else(String::new, |(ok, text)| {
        let class = if ok { "notice" } else { "error" };
        format!("<p class=\"{class}\" role=\"status\">{}</p>", escape(&text))
    });
    let body = format!(
        "<h1>{title}</h1><p>{hint}</p>{message}<p>{in_force}: <strong id=\"rule-count\">{count}</strong></p>\
<form method=\"post\" action=\"/_genkan/admin/policy\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<textarea name=\"toml\" rows=\"18\" spellcheck=\"false\" style=\"width:100%;font-family:monospace\">{text}</textarea>\
<button type=\"submit\">{save}</button></form><p><a href=\"/_genkan/admin\">← {admin}</a></p>",
        title = w.title,
        hint = w.hint,
        in_force = w.in_force,
        count = auth.policy().len(),
        csrf = escape(&session.row.csrf_token),
        text = escape(text),
        save = w.save,
        admin = words(lang).title,
    );
    page(lang, status, w.title, &body)
}

/// GET /_genkan/admin/policy
pub async fn policy_form(
    State(auth): State<Arc<Auth>>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
) -> Response {
    let identity = identity.map(|Extension(identity)| identity);
    let Some((session, _)) = administrator(&auth, &headers, identity.as_ref()) else {
        return not_admin(&headers);
    };
    match auth.stored_policy() {
        Ok(text) => policy_page(&auth, &headers, &session, &text, None, StatusCode::OK),
        Err(error) => {
            tracing::error!("cannot read the stored policy: {error:#}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The policy form as posted.
#[derive(Deserialize)]
pub struct PolicyForm {
    csrf: String,
    toml: String,
}

/// POST /_genkan/admin/policy
pub async fn save_policy(
    State(auth): State<Arc<Auth>>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
    Form(form): Form<PolicyForm>,
) -> Response {
    let identity = identity.map(|Extension(identity)| identity);
    let Some((session, actor)) = administrator(&auth, &headers, identity.as_ref()) else {
        return not_admin(&headers);
    };
    if let Some(refusal) = session.csrf_refusal(&form.csrf) {
        return refusal;
    }
    let w = policy_words(Lang::from_headers(&headers));
    match auth.save_policy(&form.toml, &actor.name, actor.source.as_deref()) {
        Ok(()) => policy_page(
            &auth,
            &headers,
            &session,
            &form.toml,
            Some((true, w.saved.to_owned())),
            StatusCode::OK,
        ),
        Err(problem) => policy_page(
            &auth,
            &headers,
            &session,
            &form.toml,
            Some((false, problem)),
            StatusCode::BAD_REQUEST,
        ),
    }
}
