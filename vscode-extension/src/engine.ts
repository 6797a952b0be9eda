/**
 * The JSON of the engine's pydantic models (codeconductor.ensemble: types.py, fixloop.py, testgen.py, discovery)
 * as the language server sends them inside its replies: snake_case keys, as `model_dump(mode="json")` writes them.
 * Hand-written; the replies around them (./protocol) are generated from server/protocol.py. Every field the
 * extension reads is optional here because an older or newer server may omit it — rendering must not crash.
 */

export interface ModelInfo {
  name: string;
  provider?: string;
  endpoint?: string;
  family?: string | null;
  parameter_size?: string | null;
  quantization?: string | null;
  context_length?: number | null;
  loaded?: boolean | null;
}

export interface ModelAnswer {
  model: ModelInfo;
  sample?: number;
  status: string; // answered | timeout | failed | cancelled | skipped
  text?: string;
  error?: string | null;
  reason?: string | null;
  latency_s?: number | null;
  tokens_out?: number | null;
}

export interface Cluster {
  members: string[];
  representative: string;
  support: number;
  passes_examples?: boolean | null;
  diff?: string;
}

export interface Finding {
  line: number;
  end_line?: number | null;
  severity?: string;
  message: string;
  fix?: string | null;
  models?: string[];
  support?: number;
  confidence?: number;
}

export interface ConsensusResult {
  no_edit?: string | null;
  kind: string; // code | findings | text | none
  pick?: string;
  pick_models?: string[];
  confidence?: number;
  agree?: number;
  answered?: number;
  asked?: number;
  clusters?: Cluster[];
  findings?: Finding[];
  method?: string;
  notes?: string[];
  /** Why the pick was NOT checked against the user's code; shown as "not checked" (never applied unseen). */
  unchecked?: string | null;
}

export interface Result {
  id?: string;
  request?: { task?: string; instruction?: string; context?: { path?: string | null; language?: string } };
  answers?: ModelAnswer[];
  consensus?: ConsensusResult;
  wall_s?: number;
  notes?: string[];
}

/** One distinct candidate of the fix-until-green loop and what the tests said (codeconductor.ensemble.fixloop.CandidateReport). */
export interface CandidateReport {
  round: number;
  models?: string[];
  code?: string;
  passed?: number;
  total?: number;
  ok?: boolean;
  summary?: string;
  failures?: string;
}

export interface RoundReport {
  round: number;
  asked?: number;
  answered?: number;
  candidates?: CandidateReport[];
  passing?: number;
  wall_s?: number;
}

/** codeconductor.ensemble.fixloop.FixOutcome (without its `result`). */
export interface FixOutcome {
  status: string; // passed | already_passing | failed
  message?: string;
  path?: string;
  function?: string;
  start_line?: number;
  end_line?: number;
  pick?: string;
  pick_models?: string[];
  passing?: number;
  tested?: number;
  baseline?: CandidateReport;
  best?: CandidateReport | null;
  rounds?: RoundReport[];
  consensus?: ConsensusResult | null;
  notes?: string[];
  wall_s?: number;
}

export interface GeneratedTest {
  name: string;
  source?: string;
  models?: string[];
  support?: number;
  outcome?: string; // passed | failed | error | skipped | timeout | not_run
  kept?: boolean;
  reason?: string;
}

/** codeconductor.ensemble.testgen.TestGenOutcome (without its `result`). */
export interface TestGenOutcome {
  path?: string;
  content?: string;
  function?: string;
  tests?: GeneratedTest[];
  kept?: number;
  message?: string;
  notes?: string[];
  wall_s?: number;
}

/** What discovery found at one server (codeconductor.ensemble.discovery.EndpointStatus). */
export interface EndpointInfo {
  name: string;
  url: string;
  state: string; // up | down | skipped-remote | skipped | error
  models?: number;
  detail?: string | null;
}
