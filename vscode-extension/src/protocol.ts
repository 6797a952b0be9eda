/**
 * The JSON shapes the CodeConductor language server sends back (docs/protocol.md). Pydantic models of
 * ensemble/types.py keep their snake_case keys; objects the server adds are camelCase. Every field the
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

/** What codeconductor.run / review / ask return (ask uses `answer`, review `findings`). */
export interface RunResponse {
  runId?: string;
  status?: string;
  applied?: boolean;
  label?: string;
  message?: string;
  confidence?: number;
  agree?: number;
  answered?: number;
  asked?: number;
  newText?: string;
  alternatives?: number;
  answer?: string;
  findings?: Finding[];
  result?: Result | null;
  /** Why no edit is offered (the consensus' `no_edit`), when none is. */
  noEdit?: string;
  /** Why the offered edit was not checked against the user's code (the consensus' `unchecked`), when it was not. */
  unchecked?: string | null;
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

/** What codeconductor.fixWithTests returns. */
export interface FixWithTestsResponse {
  runId?: string;
  status?: string; // passed | proposed | already_passing | failed | noTests | stale | rejected | cancelled
  applied?: boolean;
  message?: string;
  tests?: string[];
  newText?: string;
  outcome?: FixOutcome;
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

/** What codeconductor.generateTests returns. */
export interface GenerateTestsResponse {
  runId?: string;
  status?: string; // generated | noTests | failed | cancelled
  applied?: boolean;
  message?: string;
  uri?: string;
  content?: string;
  outcome?: TestGenOutcome;
}

export interface StatusNotification {
  models?: number;
  running?: number;
}

/** Server commands (workspace/executeCommand). The palette commands of the extension use other ids. */
export const ServerCommand = {
  run: "codeconductor.run",
  review: "codeconductor.review",
  ask: "codeconductor.ask",
  applySuggestion: "codeconductor.applySuggestion",
  listModels: "codeconductor.listModels",
  refreshModels: "codeconductor.refreshModels",
  cancel: "codeconductor.cancel",
  status: "codeconductor.status",
  reject: "codeconductor.reject",
  preview: "codeconductor.preview",
  historyReport: "codeconductor.historyReport",
  fixWithTests: "codeconductor.fixWithTests",
  generateTests: "codeconductor.generateTests",
} as const;

export const STATUS_NOTIFICATION = "codeconductor/status";
