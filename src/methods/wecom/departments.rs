//! WeCom's organisation path (`org_from_departments`): the member's main department
//! (`main_department` of `user/get`, else the first of `department`), named up to the root
//! (id 1, not part of the path) with `GET cgi-bin/department/get?id=` per level, or at once
//! from the tree `GET cgi-bin/department/list` gave the sync (`sync_minutes`).

use serde_json::{Map, Value};

use super::{classify, Step, Wecom};
use crate::http::{Callout, CalloutResponse};
use crate::idp::IdpFailure;
use crate::methods::cn::org::{self, Climb, Dept, TreeCall, TreePart, TreeSource, MAX_TREE_PAGE};
use crate::methods::cn::{self, errcode_body_within, text_field, Answer, Provider, TokenKind};

/// WeCom's root department ("根部门为1").
pub(super) const ROOT: &str = "1";

impl Wecom {
    /// The profile is complete: the department path next, or the end.
    pub(super) fn profile_done(&self, claims: Map<String, Value>) -> Answer<Step> {
        if !self.org_from_departments {
            return Answer::Claims(claims);
        }
        let main = claims
            .get("main_department")
            .and_then(org::id_text)
            .or_else(|| {
                claims
                    .get("department")
                    .and_then(Value::as_array)
                    .and_then(|l| l.first())
                    .and_then(org::id_text)
            });
        match main {
            Some(id) if id != ROOT => Answer::Next(Step::ExpectDepartment {
                id,
                names: Vec::new(),
                claims,
            }),
            // In the root department only, or no department at all: no path.
            _ => Answer::Claims(claims),
        }
    }
}

/// `department/get`: one more name, then the parent, or the path.
pub(super) fn department(
    mut names: Vec<String>,
    mut claims: Map<String, Value>,
    body: &Map<String, Value>,
) -> Result<Answer<Step>, IdpFailure> {
    let dept = body
        .get("department")
        .and_then(Value::as_object)
        .ok_or(IdpFailure::BadAnswer("no_department"))?;
    let name = text_field(dept, "name").ok_or(IdpFailure::BadAnswer("no_name"))?;
    let parent = dept
        .get("parentid")
        .and_then(org::id_text)
        .unwrap_or_default();
    match org::climb(&mut names, name, &parent, ROOT) {
        Climb::Done(path) => {
            org::set_path(&mut claims, path);
            Ok(Answer::Claims(claims))
        }
        Climb::Up(id) => Ok(Answer::Next(Step::ExpectDepartment { id, names, claims })),
    }
}

/// The whole tree in one call: `department/list` without `id` lists every department the
/// app may see (its visible range should be the root, as the seeds say).
impl TreeSource for Wecom {
    fn tree_token(&self) -> TokenKind {
        TokenKind::App
    }

    fn tree_root(&self) -> &'static str {
        ROOT
    }

    fn tree_request(&self, _call: &TreeCall, token: &str) -> Callout {
        cn::get(
            self.api_url("/cgi-bin/department/list", token, &[]),
            self.timeout_ms,
        )
    }

    fn tree_answer(
        &self,
        _call: &TreeCall,
        response: &CalloutResponse,
    ) -> Result<TreePart, IdpFailure> {
        let body = errcode_body_within(response, Self::LABEL, classify, MAX_TREE_PAGE)?;
        let list = body
            .get("department")
            .and_then(Value::as_array)
            .ok_or(IdpFailure::BadAnswer("no_department"))?;
        let depts = list
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|d| {
                let parent = d.get("parentid").unwrap_or(&Value::Null);
                Dept::new(d.get("id")?, text_field(d, "name"), parent)
            })
            .collect();
        Ok(TreePart {
            depts,
            next: Vec::new(),
        })
    }
}
