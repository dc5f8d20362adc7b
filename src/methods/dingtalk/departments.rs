//! DingTalk's organisation path (`org_from_departments`): per login,
//! `topapi/v2/department/listparentbyuser` (the member's chain of department ids) and
//! `topapi/v2/department/get` for each name; with the synced tree (`sync_minutes`, listed
//! with `topapi/v2/department/listsub` from the root down), neither: the member's first
//! department (`dept_id_list[0]` of `user/get`, else the chain's first) is looked up there.

use serde_json::{json, Map, Value};

use super::{classify, DingTalk, Step};
use crate::cache::SharedCache;
use crate::http::{Callout, CalloutResponse};
use crate::idp::IdpFailure;
use crate::methods::cn::org::{self, Dept, TreeCall, TreePart, TreeSource, MAX_TREE_PAGE};
use crate::methods::cn::{errcode_body_within, text_field, Answer, Provider, Settled, TokenKind};

/// DingTalk's root department.
const ROOT: &str = "1";

type Judged = Result<Answer<Step>, IdpFailure>;

impl DingTalk {
    /// Settles a department step from the synced tree when it knows the member's department.
    pub(super) fn settle_departments(
        &self,
        step: Step,
        cache: &dyn SharedCache,
        now: u64,
    ) -> Settled<Step> {
        let (first, claims) = match &step {
            Step::ExpectDeptPath { claims, .. } => (
                claims
                    .get("dept_id_list")
                    .and_then(Value::as_array)
                    .and_then(|l| l.first())
                    .and_then(org::id_text),
                claims,
            ),
            Step::ExpectDeptName {
                pending,
                names,
                claims,
            } if names.is_empty() => (pending.first().map(u64::to_string), claims),
            _ => return Settled::Call(step),
        };
        let sync = self.sync.as_ref();
        let found = first.and_then(|id| org::settled(sync, (cache, now), (&id, &[], ROOT), claims));
        match found {
            Some(claims) => Settled::Done(Answer::Claims(claims)),
            None => Settled::Call(step),
        }
    }
}

/// `topapi/v2/department/listparentbyuser`: the departments to name, the member's first.
pub(super) fn dept_path(claims: Map<String, Value>, result: &Map<String, Value>) -> Judged {
    // parent_list: one chain per department of the member, each from the member's
    // department up to the root (1). The first chain is the member's main one.
    let chain: Vec<u64> = result
        .get("parent_list")
        .and_then(Value::as_array)
        .and_then(|l| l.first())
        .and_then(|c| c.get("parent_dept_id_list"))
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let pending: Vec<u64> = chain
        .into_iter()
        .filter(|id| *id != 1)
        .take(org::MAX_DEPTH)
        .collect();
    if pending.is_empty() {
        return Ok(Answer::Claims(claims));
    }
    Ok(Answer::Next(Step::ExpectDeptName {
        pending,
        names: Vec::new(),
        claims,
    }))
}

/// `topapi/v2/department/get`: one more name; at the root, the path becomes `organization`.
pub(super) fn dept_name(
    mut pending: Vec<u64>,
    mut names: Vec<String>,
    mut claims: Map<String, Value>,
    result: &Map<String, Value>,
) -> Judged {
    let name = text_field(result, "name")
        .and_then(org::segment)
        .ok_or(IdpFailure::BadAnswer("no_name"))?;
    names.push(name);
    if !pending.is_empty() {
        pending.remove(0);
    }
    if pending.is_empty() {
        org::set_path(&mut claims, org::joined(&names));
        return Ok(Answer::Claims(claims));
    }
    Ok(Answer::Next(Step::ExpectDeptName {
        pending,
        names,
        claims,
    }))
}

/// The whole tree: `listsub` of the root, then of every department it lists (DingTalk gives
/// one level per call).
impl TreeSource for DingTalk {
    fn tree_token(&self) -> TokenKind {
        TokenKind::App
    }

    fn tree_root(&self) -> &'static str {
        ROOT
    }

    fn tree_request(&self, call: &TreeCall, token: &str) -> Callout {
        let dept: u64 = call
            .cursor
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        self.oapi_post(
            "/topapi/v2/department/listsub",
            token,
            &json!({"dept_id": dept, "language": "zh_CN"}),
        )
    }

    fn tree_answer(
        &self,
        _call: &TreeCall,
        response: &CalloutResponse,
    ) -> Result<TreePart, IdpFailure> {
        let body = errcode_body_within(response, Self::LABEL, classify, MAX_TREE_PAGE)?;
        let list = body
            .get("result")
            .and_then(Value::as_array)
            .ok_or(IdpFailure::BadAnswer("no_result"))?;
        let depts: Vec<Dept> = list
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|d| {
                let parent = d.get("parent_id").unwrap_or(&Value::Null);
                Dept::new(d.get("dept_id")?, text_field(d, "name"), parent)
            })
            .collect();
        let next = depts
            .iter()
            .map(|d| TreeCall {
                cursor: Some(d.id.clone()),
            })
            .collect();
        Ok(TreePart { depts, next })
    }
}
