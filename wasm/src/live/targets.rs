//! Which native members a tab keeps a socket to (issue #13).
//!
//! The replicated records are the authority: once the tab has applied a configuration it dials
//! only that configuration's native members, each at the address its applied address record
//! names. Before that (a tab just admitted, catching up through a long log whose address records
//! come last) it dials the members the admitting leader named in `Admitted`
//! (`raft_core::wire::member_hints`), so that losing the admitting node does not strand it; and a
//! member of its configuration whose address record it has not applied yet is dialled at the
//! address the leader named.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use raft_core::wire::member_hints::is_dialable_address;
use raft_core::wire::records::is_browser_node_id;
use raft_core::NodeId;

/// The native members `own` should keep a socket to, with their addresses: `members` is the
/// configuration the tab's node holds (empty before it has applied one), `records` its applied
/// address records, `hints` the members its admission named.
pub fn dial_targets(
    own: NodeId,
    members: &BTreeSet<NodeId>,
    records: &[(NodeId, String)],
    hints: &BTreeMap<NodeId, String>,
) -> Vec<(NodeId, String)> {
    let native = |id: &NodeId| *id != own && !is_browser_node_id(*id);
    if members.is_empty() {
        return hints
            .iter()
            .filter(|(id, address)| native(id) && is_dialable_address(address))
            .map(|(id, address)| (*id, address.clone()))
            .collect();
    }
    let recorded: BTreeMap<NodeId, &String> = records.iter().map(|(id, address)| (*id, address)).collect();
    members
        .iter()
        .filter(|id| native(id))
        .filter_map(|id| {
            let address = recorded.get(id).copied().or_else(|| hints.get(id))?;
            is_dialable_address(address).then(|| (*id, address.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use raft_core::wire::records::BROWSER_NODE_ID_MIN;

    const TAB: NodeId = NodeId(BROWSER_NODE_ID_MIN + 3);

    fn hints() -> BTreeMap<NodeId, String> {
        (1..=3).map(|id| (NodeId(id), alloc::format!("h:{id}"))).collect()
    }

    #[test]
    fn before_any_configuration_the_admission_names_the_members() {
        let targets = dial_targets(TAB, &BTreeSet::new(), &[], &hints());
        assert_eq!(
            targets,
            vec![(NodeId(1), "h:1".into()), (NodeId(2), "h:2".into()), (NodeId(3), "h:3".into())]
        );
        // Nothing named, nothing applied: nothing to dial (the Worker keeps its invite's node).
        assert!(dial_targets(TAB, &BTreeSet::new(), &[], &BTreeMap::new()).is_empty());
    }

    #[test]
    fn once_applied_the_records_and_the_configuration_decide() {
        let members: BTreeSet<NodeId> = [NodeId(1), NodeId(2), NodeId(4), TAB, NodeId(TAB.0 + 1)].into();
        let records = vec![
            (NodeId(1), "r:1".to_string()),
            (NodeId(4), "r:4".to_string()),
            (NodeId(TAB.0 + 1), "browser".to_string()),
            (TAB, "browser".to_string()),
        ];
        // 1 and 4 at their recorded addresses (the record wins over the hint), 2 at the hint
        // until its record is applied, 3 no longer a member: not dialled; tabs never.
        let targets = dial_targets(TAB, &members, &records, &hints());
        assert_eq!(
            targets,
            vec![(NodeId(1), "r:1".into()), (NodeId(2), "h:2".into()), (NodeId(4), "r:4".into())]
        );
    }
}
