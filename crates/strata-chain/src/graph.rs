//! The image graph: which chain image each Dockerfile reference names, the edges parent → child,
//! external roots, cycles, the topological order (ties broken by name) and build waves.
//!
//! The input is plain data, one [`Use`] per reference a Dockerfile makes, so the algorithms need no
//! files and no parser.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;

use crate::names;

/// How a Dockerfile uses an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UseKind {
    /// `FROM image`: the image is the stage's base.
    From,
    /// `COPY --from=image`: files are copied out of it.
    CopyFrom,
    /// `RUN --mount=from=image`: it is mounted during a RUN.
    MountFrom,
}

impl UseKind {
    /// The instruction as written: `FROM`, `COPY --from`, `RUN --mount from=`.
    pub fn instruction(self) -> &'static str {
        match self {
            UseKind::From => "FROM",
            UseKind::CopyFrom => "COPY --from",
            UseKind::MountFrom => "RUN --mount from=",
        }
    }
}

/// One reference from an image's Dockerfile to another image (after ARG substitution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    /// The index of the image whose Dockerfile holds the reference.
    pub image: usize,
    /// The reference as written, after ARG substitution.
    pub reference: String,
    /// The instruction.
    pub kind: UseKind,
    /// The Dockerfile line (1-based).
    pub line: usize,
}

/// One reference seen from the graph: the instruction, line and reference text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UseSite {
    /// The instruction.
    pub kind: UseKind,
    /// The Dockerfile line (1-based).
    pub line: usize,
    /// The reference as written, after ARG substitution.
    pub reference: String,
}

/// What the graph builder needs to know of an image: its name.
pub trait Named {
    /// The image's name in the chain.
    fn name(&self) -> &str;
}

impl Named for crate::manifest::Image {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for String {
    fn name(&self) -> &str {
        self
    }
}

impl Named for &str {
    fn name(&self) -> &str {
        self
    }
}

/// A graph defect found while building it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphDefect {
    /// Image `image`'s Dockerfile names the image itself.
    SelfReference {
        /// The image index.
        image: usize,
        /// Where.
        site: UseSite,
    },
    /// A cycle of image indices; the first (the smallest name) is repeated at the end.
    Cycle(Vec<usize>),
    /// Image `image`'s Dockerfile names an image in the chain's own namespace that the chain does
    /// not declare (see [`Resolver::claims`]).
    UnknownChainImage {
        /// The image index.
        image: usize,
        /// Where.
        site: UseSite,
    },
}

/// The chain's image graph. Node `i` is image `i` of the chain file.
#[derive(Debug, Clone)]
pub struct ImageGraph {
    names: Vec<String>,
    graph: DiGraph<(), Vec<UseSite>>,
    external: BTreeMap<String, Vec<(usize, UseSite)>>,
    external_by_image: Vec<Vec<UseSite>>,
    order: Vec<usize>,
    wave: Vec<usize>,
}

/// Maps every accepted spelling of a chain image's name to the image: `name`, `<chain>/name`,
/// `<registry>/<chain>/name`, `localhost/<chain>/name` (tags and digests are ignored); and a bought
/// image's pinned reference, `repo[:tag]@sha256:...`, to that image (digest required to match).
#[derive(Debug, Clone)]
pub struct Resolver {
    forms: HashMap<String, usize>,
    pinned: HashMap<String, usize>,
    /// Repository prefixes of the chain's own namespace: `acme/`, `localhost/acme/`,
    /// `<registry>/acme/`.
    namespaces: Vec<String>,
}

impl Resolver {
    /// A resolver for images `names` of chain `chain`, pushed to `registry`.
    pub fn new<'a>(
        chain: &str,
        registry: Option<&str>,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Resolver {
        let mut forms = HashMap::new();
        let mut namespaces = vec![format!("{chain}/"), format!("localhost/{chain}/")];
        if let Some(registry) = registry {
            namespaces.push(format!("{registry}/{chain}/"));
        }
        for (i, name) in names.into_iter().enumerate() {
            forms.insert(name.to_string(), i);
            forms.insert(format!("{chain}/{name}"), i);
            forms.insert(format!("localhost/{chain}/{name}"), i);
            if let Some(registry) = registry {
                forms.insert(format!("{registry}/{chain}/{name}"), i);
            }
        }
        Resolver {
            forms,
            pinned: HashMap::new(),
            namespaces,
        }
    }

    /// Whether `reference` lies in the chain's own namespace (`acme/x`, `localhost/acme/x`,
    /// `<registry>/acme/x`), where only the chain's images live: such a reference that
    /// [`Resolver::resolve`] does not know is a mistake, not an external image.
    pub fn claims(&self, reference: &str) -> bool {
        let r = names::split_reference(reference);
        self.namespaces
            .iter()
            .any(|ns| r.repository.starts_with(ns.as_str()))
    }

    /// Resolve references to `pinned` (a bought image's `source.image`) to image `i`: the same
    /// repository and digest, with any tag or none.
    pub fn add_pinned(&mut self, pinned: &str, i: usize) {
        let r = names::split_reference(pinned);
        if let Some(digest) = r.digest {
            self.pinned.insert(format!("{}@{digest}", r.repository), i);
        }
    }

    /// The chain image `reference` names, if any.
    pub fn resolve(&self, reference: &str) -> Option<usize> {
        let r = names::split_reference(reference);
        if let Some(digest) = r.digest
            && let Some(&i) = self.pinned.get(&format!("{}@{digest}", r.repository))
        {
            return Some(i);
        }
        self.forms.get(r.repository).copied()
    }
}

impl ImageGraph {
    /// Build the graph of `images` from their Dockerfiles' `uses`, resolving references with
    /// `resolver`. Fails on a self-reference or a cycle. Every `Use::image` must be an index into
    /// `images` (it panics otherwise: that is a caller's bug, not a user's error).
    pub fn build<N: Named>(
        images: &[N],
        uses: Vec<Use>,
        resolver: &Resolver,
    ) -> Result<ImageGraph, GraphDefect> {
        let names: Vec<String> = images.iter().map(|i| i.name().to_string()).collect();
        let mut graph: DiGraph<(), Vec<UseSite>> = DiGraph::with_capacity(names.len(), uses.len());
        for _ in &names {
            graph.add_node(());
        }
        let mut edges: HashMap<(usize, usize), petgraph::graph::EdgeIndex> = HashMap::new();
        let mut external: BTreeMap<String, Vec<(usize, UseSite)>> = BTreeMap::new();
        for u in uses {
            let site = UseSite {
                kind: u.kind,
                line: u.line,
                reference: u.reference,
            };
            match resolver.resolve(&site.reference) {
                Some(parent) if parent == u.image => {
                    return Err(GraphDefect::SelfReference {
                        image: u.image,
                        site,
                    });
                }
                Some(parent) => {
                    let e = *edges.entry((parent, u.image)).or_insert_with(|| {
                        graph.add_edge(NodeIndex::new(parent), NodeIndex::new(u.image), Vec::new())
                    });
                    graph[e].push(site);
                }
                None if resolver.claims(&site.reference) => {
                    return Err(GraphDefect::UnknownChainImage {
                        image: u.image,
                        site,
                    });
                }
                None => external
                    .entry(site.reference.clone())
                    .or_default()
                    .push((u.image, site)),
            }
        }
        for sites in graph.edge_weights_mut() {
            sites.sort();
        }
        for users in external.values_mut() {
            users.sort();
        }
        let mut external_by_image: Vec<Vec<UseSite>> = vec![Vec::new(); names.len()];
        for (i, site) in external.values().flatten() {
            external_by_image[*i].push(site.clone());
        }
        for sites in &mut external_by_image {
            sites.sort_by(|a, b| a.reference.cmp(&b.reference).then(a.line.cmp(&b.line)));
        }
        let mut g = ImageGraph {
            names,
            graph,
            external,
            external_by_image,
            order: Vec::new(),
            wave: Vec::new(),
        };
        g.order = g.topological().map_err(GraphDefect::Cycle)?;
        g.wave = g.waves_of(&g.order, |_| true);
        Ok(g)
    }

    /// Kahn's algorithm, the smallest name first among the ready images; a cycle on failure.
    fn topological(&self) -> Result<Vec<usize>, Vec<usize>> {
        let n = self.names.len();
        let mut indegree: Vec<usize> = (0..n).map(|i| self.parents(i).len()).collect();
        let mut ready: BinaryHeap<Reverse<(&str, usize)>> = (0..n)
            .filter(|&i| indegree[i] == 0)
            .map(|i| Reverse((self.names[i].as_str(), i)))
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse((_, i))) = ready.pop() {
            order.push(i);
            for c in self
                .graph
                .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            {
                let c = c.index();
                indegree[c] -= 1;
                if indegree[c] == 0 {
                    ready.push(Reverse((self.names[c].as_str(), c)));
                }
            }
        }
        if order.len() == n {
            Ok(order)
        } else {
            Err(self.find_cycle())
        }
    }

    /// A shortest cycle through the smallest-named image that is on a cycle.
    fn find_cycle(&self) -> Vec<usize> {
        let sccs = petgraph::algo::tarjan_scc(&self.graph);
        let start = sccs
            .iter()
            .filter(|c| c.len() > 1)
            .flatten()
            .map(|n| n.index())
            .min_by(|a, b| self.names[*a].cmp(&self.names[*b]))
            .expect("a graph without a topological order has a cycle");
        // breadth first from start back to start, children in name order
        let mut prev: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(i) = queue.pop_front() {
            for c in self.children(i) {
                if c == start {
                    let mut path = vec![i];
                    let mut at = i;
                    while at != start {
                        at = prev[&at];
                        path.push(at);
                    }
                    path.reverse();
                    path.push(start);
                    return path;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(c) {
                    e.insert(i);
                    queue.push_back(c);
                }
            }
        }
        unreachable!("the smallest image of a strongly connected component is on a cycle")
    }

    /// Wave (0-based) of each image in `order` counting only parents for which `keep` holds.
    fn waves_of(&self, order: &[usize], keep: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut wave = vec![0; self.names.len()];
        for &i in order {
            wave[i] = self
                .parents(i)
                .into_iter()
                .filter(|&p| keep(p))
                .map(|p| wave[p] + 1)
                .max()
                .unwrap_or(0);
        }
        wave
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when the chain has no images.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name of image `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// The chain parents of image `i`, sorted by name.
    pub fn parents(&self, i: usize) -> Vec<usize> {
        self.sorted(
            self.graph
                .neighbors_directed(NodeIndex::new(i), Direction::Incoming),
        )
    }

    /// The chain children of image `i`, sorted by name.
    pub fn children(&self, i: usize) -> Vec<usize> {
        self.sorted(
            self.graph
                .neighbors_directed(NodeIndex::new(i), Direction::Outgoing),
        )
    }

    fn sorted(&self, nodes: impl Iterator<Item = NodeIndex>) -> Vec<usize> {
        let mut v: Vec<usize> = nodes.map(|n| n.index()).collect();
        v.sort_by(|a, b| self.names[*a].cmp(&self.names[*b]));
        v.dedup();
        v
    }

    /// How `child`'s Dockerfile uses `parent` (empty when it does not).
    pub fn uses(&self, parent: usize, child: usize) -> &[UseSite] {
        self.graph
            .find_edge(NodeIndex::new(parent), NodeIndex::new(child))
            .map_or(&[], |e| self.graph[e].as_slice())
    }

    /// External references (not chain images), each with the images using it and where.
    pub fn external(&self) -> &BTreeMap<String, Vec<(usize, UseSite)>> {
        &self.external
    }

    /// The external references image `i` uses, sorted, each once.
    pub fn external_of(&self, i: usize) -> Vec<&str> {
        let mut v: Vec<&str> = self.external_by_image[i]
            .iter()
            .map(|s| s.reference.as_str())
            .collect();
        v.dedup();
        v
    }

    /// Where image `i` uses external references (sorted by reference, then line).
    pub fn external_uses(&self, i: usize) -> &[UseSite] {
        &self.external_by_image[i]
    }

    /// Every image in build order: parents before children, ties broken by name.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Image `i`'s build wave (0-based): one more than its deepest chain parent.
    pub fn wave(&self, i: usize) -> usize {
        self.wave[i]
    }

    /// `seeds` and everything downstream of them, in build order.
    pub fn downstream(&self, seeds: &[usize]) -> Vec<usize> {
        let mut marked = vec![false; self.names.len()];
        let mut stack: Vec<usize> = seeds.to_vec();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut marked[i], true) {
                stack.extend(
                    self.graph
                        .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
                        .map(|n| n.index()),
                );
            }
        }
        self.order.iter().copied().filter(|&i| marked[i]).collect()
    }

    /// Group `subset` (in build order) into waves: images of one wave depend on no image of the same
    /// or a later wave, counting only dependencies inside `subset`. Each wave is sorted by name.
    pub fn waves(&self, subset: &[usize]) -> Vec<Vec<usize>> {
        let mut member = vec![false; self.names.len()];
        for &i in subset {
            member[i] = true;
        }
        let wave = self.waves_of(subset, |p| member[p]);
        let mut out: Vec<Vec<usize>> = Vec::new();
        for &i in subset {
            let w = wave[i];
            if out.len() <= w {
                out.resize_with(w + 1, Vec::new);
            }
            out[w].push(i);
        }
        for w in &mut out {
            w.sort_by(|a, b| self.names[*a].cmp(&self.names[*b]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(list: &[(usize, &str, UseKind)]) -> Vec<Use> {
        list.iter()
            .enumerate()
            .map(|(k, (image, reference, kind))| Use {
                image: *image,
                reference: reference.to_string(),
                kind: *kind,
                line: k + 1,
            })
            .collect()
    }

    fn names(g: &ImageGraph, v: &[usize]) -> Vec<String> {
        v.iter().map(|&i| g.name(i).to_string()).collect()
    }

    #[test]
    fn every_spelling_of_a_chain_image_resolves() {
        let r = Resolver::new(
            "acme",
            Some("registry.example.com:5000"),
            ["corebuild", "app"],
        );
        for form in [
            "corebuild",
            "corebuild:7",
            "acme/corebuild",
            "acme/corebuild:latest",
            "registry.example.com:5000/acme/corebuild:1.2",
            "localhost/acme/corebuild",
            "acme/corebuild@sha256:0000",
        ] {
            assert_eq!(r.resolve(form), Some(0), "{form}");
        }
        for other in [
            "docker.io/library/corebuild",
            "other/corebuild",
            "core",
            "acme/corebuild/x",
            "localhost/corebuild",
        ] {
            assert_eq!(r.resolve(other), None, "{other}");
        }
        let mut r = Resolver::new("acme", None, ["rhel", "corebuild"]);
        let digest = format!("sha256:{}", "ab".repeat(32));
        r.add_pinned(&format!("registry.example.com/rhel7:7.9@{digest}"), 0);
        assert_eq!(
            r.resolve(&format!("registry.example.com/rhel7:7.9@{digest}")),
            Some(0)
        );
        assert_eq!(
            r.resolve(&format!("registry.example.com/rhel7@{digest}")),
            Some(0)
        );
        // a tag alone may name another image than the pinned one
        assert_eq!(r.resolve("registry.example.com/rhel7:7.9"), None);
        assert_eq!(
            r.resolve(&format!("registry.example.com/rhel8@{digest}")),
            None
        );
    }

    #[test]
    fn diamond_order_and_waves() {
        // 0 corebuild; 1 php and 2 jvm on it; 3 app FROM php, COPY --from jvm
        let images = ["corebuild", "php", "jvm", "app"];
        let r = Resolver::new("acme", None, images);
        let g = ImageGraph::build(
            &images,
            uses(&[
                (0, "debian:12", UseKind::From),
                (1, "corebuild", UseKind::From),
                (2, "acme/corebuild", UseKind::From),
                (3, "php", UseKind::From),
                (3, "jvm:latest", UseKind::CopyFrom),
            ]),
            &r,
        )
        .unwrap();
        assert_eq!(names(&g, g.order()), ["corebuild", "jvm", "php", "app"]);
        assert_eq!(names(&g, &g.parents(3)), ["jvm", "php"]);
        assert_eq!(names(&g, &g.children(0)), ["jvm", "php"]);
        assert_eq!(g.uses(2, 3)[0].kind, UseKind::CopyFrom);
        let waves: Vec<Vec<String>> = g.waves(g.order()).iter().map(|w| names(&g, w)).collect();
        assert_eq!(waves, [vec!["corebuild"], vec!["jvm", "php"], vec!["app"]]);
        assert_eq!(g.external().keys().collect::<Vec<_>>(), ["debian:12"]);
        assert_eq!(g.external_of(0), ["debian:12"]);
        assert_eq!(names(&g, &g.downstream(&[1])), ["php", "app"]);
    }

    #[test]
    fn ties_are_broken_by_name_not_file_order() {
        let images = ["zeta", "alpha", "mid"];
        let g = ImageGraph::build(
            &images,
            uses(&[(2, "zeta", UseKind::From)]),
            &Resolver::new("c", None, images),
        )
        .unwrap();
        assert_eq!(names(&g, g.order()), ["alpha", "zeta", "mid"]);
    }

    #[test]
    fn self_reference_and_cycles_are_defects() {
        let images = ["corebuild", "httpd-php", "wordpress"];
        let r = Resolver::new("acme", None, images);
        let err = ImageGraph::build(
            &images,
            uses(&[(1, "acme/httpd-php:1", UseKind::CopyFrom)]),
            &r,
        )
        .unwrap_err();
        assert!(matches!(err, GraphDefect::SelfReference { image: 1, ref site } if site.line == 1));
        let err = ImageGraph::build(
            &images,
            uses(&[
                (1, "corebuild", UseKind::From),
                (2, "httpd-php", UseKind::From),
                (0, "wordpress", UseKind::From),
            ]),
            &r,
        )
        .unwrap_err();
        assert_eq!(err, GraphDefect::Cycle(vec![0, 1, 2, 0]));
        // a cycle beside an acyclic part: the cycle found is the one through the smallest name
        let images = ["a", "x", "y"];
        let err = ImageGraph::build(
            &images,
            uses(&[
                (2, "x", UseKind::From),
                (1, "y", UseKind::MountFrom),
                (2, "a", UseKind::From),
            ]),
            &Resolver::new("c", None, images),
        )
        .unwrap_err();
        assert_eq!(err, GraphDefect::Cycle(vec![1, 2, 1]));
    }
}
