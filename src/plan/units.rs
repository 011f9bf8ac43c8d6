//! Which units a cut's grouping becomes: their names, the operations each hosts, where
//! each service's data lives (an embedded store, or a state unit of its own), their routes
//! and the static hops of every entrypoint.

use super::*;

/// Unit names of a cut's groups: the cut's name and each group's first operation.
pub(super) fn named_groups(cut: &str, groups: &[Vec<String>]) -> Vec<(String, Vec<String>)> {
    groups
        .iter()
        .map(|ops| {
            let first = ops.first().map_or("", String::as_str);
            (format!("{cut}-{first}"), ops.clone())
        })
        .collect()
}

pub(super) fn builtin_groups(
    scenario: &Scenario,
    architecture: &Architecture,
) -> (Vec<(String, Vec<String>)>, StatePlacement) {
    match architecture {
        Architecture::Nano => (
            scenario
                .operations
                .iter()
                .map(|op| (format!("nano-{}", op.name), vec![op.name.clone()]))
                .collect(),
            StatePlacement::StateUnits,
        ),
        Architecture::Micro => (
            scenario
                .services
                .iter()
                .map(|s| (format!("micro-{}", s.name), s.operations.clone()))
                .collect(),
            StatePlacement::Embedded,
        ),
        _ => (
            vec![(
                "monolith".to_string(),
                scenario
                    .operations
                    .iter()
                    .map(|op| op.name.clone())
                    .collect(),
            )],
            StatePlacement::Embedded,
        ),
    }
}

pub(super) fn plan_grouping(
    scenario: &Scenario,
    architecture: Architecture,
    groups: Vec<(String, Vec<String>)>,
    placement: StatePlacement,
) -> Deployment {
    let index = Index::new(scenario);
    let mut op_unit = BTreeMap::new();
    for (unit, (_, ops)) in groups.iter().enumerate() {
        for op in ops {
            op_unit.insert(op.clone(), unit);
        }
    }
    // Service → the unit embedding its store: the one unit hosting all its operations.
    let mut units_of_service: HashMap<&str, BTreeSet<usize>> = HashMap::new();
    for op in &scenario.operations {
        units_of_service
            .entry(op.service.as_str())
            .or_default()
            .insert(op_unit[&op.name]);
    }
    // A unit runs as many processes as the most replicated service it hosts asks for.
    let replicas_of_service: HashMap<&str, u32> = scenario
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.replicas.max(1)))
        .collect();
    let replicas: Vec<u32> = groups
        .iter()
        .map(|(_, ops)| {
            ops.iter()
                .filter_map(|op| index.operation(op))
                .filter_map(|op| replicas_of_service.get(op.service.as_str()))
                .copied()
                .max()
                .unwrap_or(1)
        })
        .collect();
    // Replicas share their data the way they would share a database: in a state unit.
    let embedded_in = |service: &str| -> Option<usize> {
        if placement == StatePlacement::StateUnits {
            return None;
        }
        let units = units_of_service.get(service)?;
        let unit = *units.first()?;
        (units.len() == 1 && replicas[unit] == 1).then_some(unit)
    };
    let mut embedded_by_unit: HashMap<usize, Vec<StoreDef>> = HashMap::new();
    for service in &scenario.services {
        if let Some(unit) = embedded_in(&service.name) {
            embedded_by_unit
                .entry(unit)
                .or_default()
                .push(store_def(service));
        }
    }

    let mut units: Vec<PlannedUnit> = groups
        .into_iter()
        .enumerate()
        .map(|(unit, (name, ops))| {
            let operations: Vec<OperationDef> = ops
                .iter()
                .filter_map(|op| index.operation(op).cloned())
                .collect();
            let remote_request_bytes = operations
                .iter()
                .flat_map(|op| op.calls.iter().flat_map(|step| step.callees()))
                .filter(|callee| op_unit.get(callee.as_str()) != Some(&unit))
                .filter_map(|callee| index.operation(callee))
                .map(|callee| (callee.name.clone(), callee.request_bytes))
                .collect();
            PlannedUnit {
                name,
                hosts: ops,
                role: UnitRole::Service {
                    operations,
                    embedded_stores: embedded_by_unit.remove(&unit).unwrap_or_default(),
                    remote_request_bytes,
                },
                replicas: replicas[unit],
            }
        })
        .collect();

    let mut store_unit = BTreeMap::new();
    for service in &scenario.services {
        if embedded_in(&service.name).is_some() || !index.has_data(service) {
            continue;
        }
        store_unit.insert(service.name.clone(), units.len());
        units.push(PlannedUnit {
            name: format!("state-{}", service.name),
            hosts: vec![format!("store of {}", service.name)],
            role: UnitRole::State {
                store: store_def(service),
            },
            replicas: 1,
        });
    }

    let mut deployment = Deployment {
        architecture,
        security: SecurityMode::None,
        transport: Transport::default(),
        mesh: Mesh::default(),
        tracing: Tracing::Off,
        units,
        op_unit,
        store_unit,
        static_hops: BTreeMap::new(),
        critical_path_hops: BTreeMap::new(),
    };
    let hops = HopTable::of(scenario, &index, &deployment);
    for entry in &scenario.entrypoints {
        let Some(&op) = index.by_name.get(entry.op.as_str()) else {
            continue;
        };
        // Both count the driver's request to the entry unit.
        let mut static_hops = hops.downstream[op];
        static_hops.service = static_hops.service.saturating_add(1);
        deployment.static_hops.insert(entry.op.clone(), static_hops);
        let critical = hops.critical[op].saturating_add(1);
        deployment
            .critical_path_hops
            .insert(entry.op.clone(), critical);
    }
    deployment
}

/// Lookups a plan makes many times, built once: operations by name (and index), and the
/// services whose operations read or write.
pub(super) struct Index<'a> {
    pub(super) by_name: HashMap<&'a str, usize>,
    pub(super) operations: &'a [OperationDef],
    services_with_access: HashSet<&'a str>,
}

impl<'a> Index<'a> {
    pub(super) fn new(scenario: &'a Scenario) -> Self {
        Index {
            by_name: scenario
                .operations
                .iter()
                .enumerate()
                .map(|(i, op)| (op.name.as_str(), i))
                .collect(),
            operations: &scenario.operations,
            services_with_access: scenario
                .operations
                .iter()
                .filter(|op| !op.reads.is_empty() || !op.writes.is_empty())
                .map(|op| op.service.as_str())
                .collect(),
        }
    }

    pub(super) fn operation(&self, name: &str) -> Option<&'a OperationDef> {
        self.by_name.get(name).map(|&i| &self.operations[i])
    }

    /// Whether a service has data: seeded keys, or operations that read or write.
    pub(super) fn has_data(&self, service: &Service) -> bool {
        !service.data.is_empty() || self.services_with_access.contains(service.name.as_str())
    }
}

fn store_def(service: &Service) -> StoreDef {
    StoreDef {
        service: service.name.clone(),
        seeds: service.data.clone(),
    }
}
