//! The pages rendered from plain data: hostile names stay text, links stay inside `/ui/`, a
//! 5,000-image chain collapses into groups that stay small, a run's events make one story.

use strata_events::{Event, Kind};
use strata_ui::model::{ChainView, NodeStatus, NodeView, TimelineFilter, TimelineView};
use strata_ui::pages;

const HOSTILE: &str = "<script>alert(1)</script>\"'&";

fn node(name: &str, owner: &str, wave: usize, state: &str) -> NodeView {
    NodeView {
        name: name.into(),
        owner: owner.into(),
        tier: Some(format!("tier-{wave}")),
        wave,
        status: NodeStatus {
            state: state.into(),
            why: Some(HOSTILE.into()),
        },
        digest: Some(format!("sha256:{:064}", 0)),
        build: Some(3),
    }
}

#[test]
fn hostile_names_and_reasons_are_escaped_in_the_graph_and_the_table() {
    let view = ChainView {
        chain: HOSTILE.into(),
        teams: vec![HOSTILE.into()],
        nodes: vec![
            node(HOSTILE, HOSTILE, 0, "stale"),
            node("../../etc/passwd", "ops", 1, "up-to-date"),
        ],
        edges: vec![(0, 1)],
    };
    let html = pages::chain_page(&view, None).into_string();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    // Links are percent-encoded path segments under /ui/image/.
    assert!(html.contains("href=\"/ui/image/%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22%27%26\""));
    assert!(
        html.contains("href=\"/ui/image/..%2F..%2Fetc%2Fpasswd\""),
        "{html}"
    );
    assert!(html.contains("<svg"), "a small chain is drawn");
}

#[test]
fn a_five_thousand_image_chain_is_grouped_by_team_and_tier_under_200_kb() {
    let teams: Vec<String> = (0..8).map(|t| format!("team-{t}")).collect();
    let nodes: Vec<NodeView> = (0..5000)
        .map(|i| {
            node(
                &format!("image-{i:05}"),
                &teams[i % 8],
                (i / 1250).min(3),
                if i % 10 == 0 { "stale" } else { "up-to-date" },
            )
        })
        .collect();
    let view = ChainView {
        chain: "acme".into(),
        teams,
        nodes,
        edges: (1..5000).map(|i| (i / 2, i)).collect(),
    };
    let html = pages::chain_page(&view, None).into_string();
    assert!(html.len() < 200 * 1024, "{} bytes", html.len());
    assert!(html.contains("<details"), "groups collapse");
    assert!(
        html.contains("href=\"/ui/?team=team-3\""),
        "each team's full list is a click away"
    );
    // One team's page lists every one of its images.
    let team = pages::chain_page(&view, Some("team-3")).into_string();
    assert_eq!(team.matches("class=\"chip\"").count(), 625);
}

fn event(id: i64, run: Option<&str>, image: &str, kind: Kind, cause: Option<&str>) -> Event {
    Event {
        id,
        time: format!("2026-12-01T00:00:{id:02}.000Z"),
        kind: Some(kind),
        image: image.into(),
        team: Some("operations".into()),
        run_id: run.map(Into::into),
        cause: cause.map(Into::into),
        result: "ok".into(),
        ..Event::default()
    }
}

#[test]
fn a_cascade_is_one_story_and_other_events_stand_alone() {
    let events = vec![
        event(1, Some("r1"), "corebuild", Kind::Build, None),
        event(2, Some("r1"), "corebuild", Kind::Sign, None),
        event(3, Some("r1"), "httpd-php", Kind::Build, Some("corebuild")),
        event(4, None, "acme/corebuild", Kind::Push, None),
        event(5, Some("r1"), "wordpress", Kind::Build, Some("httpd-php")),
    ];
    let stories = strata_ui::data::stories(events);
    assert_eq!(stories.len(), 2);
    assert_eq!(stories[0].run_id.as_deref(), Some("r1"));
    assert_eq!(stories[0].events.len(), 4);
    assert!(
        stories[0]
            .headline
            .contains("corebuild changed, cascaded to httpd-php, wordpress"),
        "{}",
        stories[0].headline
    );
    let mut hostile = event(6, None, HOSTILE, Kind::Push, None);
    hostile.reason = Some(HOSTILE.into());
    let view = TimelineView {
        filter: TimelineFilter {
            image: Some(HOSTILE.into()),
            ..TimelineFilter::default()
        },
        stories: strata_ui::data::stories(vec![hostile]),
        next_before: Some(7),
        last_id: 6,
    };
    let html = pages::timeline_page(&view).into_string();
    assert_eq!(html.matches("<script").count(), 1, "only live.js: {html}");
    assert!(html.contains("<script src=\"/ui/assets/live.js\" defer></script>"));
    assert!(html.contains("before=7&amp;image=%3Cscript%3E"), "{html}");
}

#[test]
fn deployments_show_what_runs_since_when_health_approvals_and_holds() {
    use strata_deploy::state::{DeploymentState, Hold, Pending, Running};
    let digest = format!("sha256:{}", "a".repeat(64));
    let view = strata_ui::model::DeploymentsView {
        deployments: vec![strata_ui::model::DeploymentView {
            file: "deploy".into(),
            name: "wordpress-prod".into(),
            image: Some("wordpress".into()),
            state: DeploymentState {
                running: Some(Running {
                    digest: digest.clone(),
                    container: "c".into(),
                    since: "2026-12-01T10:00:00Z".into(),
                    healthy: true,
                    ports: Vec::new(),
                }),
                pending: Some(Pending {
                    digest: format!("sha256:{}", "b".repeat(64)),
                    since: "2026-12-02T10:00:00Z".into(),
                }),
                hold: Some(Hold {
                    digest,
                    by: HOSTILE.into(),
                    since: "2026-12-01T11:00:00Z".into(),
                    reason: "hold".into(),
                }),
                ..DeploymentState::default()
            },
        }],
    };
    let html = pages::deployments_page(&view).into_string();
    assert!(html.contains("since 2026-12-01T10:00:00Z"), "{html}");
    assert!(html.contains("<span class=\"ok\">healthy</span>"), "{html}");
    assert!(
        html.contains("waiting for approval: <span class=\"mono\">sha256:bbbbbbbbbbbb</span>"),
        "{html}"
    );
    assert!(html.contains("held at"), "{html}");
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("href=\"/ui/image/wordpress\""), "{html}");
}
