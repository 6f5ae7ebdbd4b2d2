// The JSON shapes the page, the worker and the server exchange, for the type checker only.
// The server and pipeline/bridge.py own them; nothing here decides a value.

/**
 * One template field as the server or the engine describes it (pipeline FieldInfo).
 * @typedef {object} FieldInfo
 * @property {string} name
 * @property {string} label
 * @property {boolean} required
 * @property {string | null} [description]
 * @property {string[]} [allowed] a list field's allowed values
 */

/**
 * The page's configuration (#loadbay-config, server/importer/page.py).
 * @typedef {object} PageConfig
 * @property {string} publishableKey
 * @property {string} templateId
 * @property {Record<string, unknown> & {title?: string, name?: string}} template
 * @property {FieldInfo[]} fields
 * @property {string} parentOrigin
 * @property {number} maxFileBytes
 * @property {Retention} retention
 * @property {string} worker
 * @property {string} pyodide
 * @property {string} lock
 * @property {string[]} packages
 * @property {string} build the asset build id
 * @property {string} [accept]
 * @property {{maxRows: number} | null} [hostPage] the template's host-page destination, if any
 * @property {boolean} [identityRequired] imports need a signed end-user identity
 */

/**
 * How long the server keeps the rows (server/importer/page.py); the server decides it.
 * @typedef {object} Retention
 * @property {number} days
 * @property {boolean} passthrough nothing is stored: rows pass straight to the organisation
 * @property {string} organisation
 */

/**
 * @typedef {object} Match
 * @property {string} field
 * @property {number} [column]
 * @property {string} source "exact", "fuzzy", "remembered", ...
 * @property {number} [confidence]
 * @property {boolean} [proposed] too unsure to pre-select: offered beside the field
 */

/**
 * What the engine says about an opened file (open_file / use_remembered).
 * @typedef {object} Described
 * @property {string} file
 * @property {number} rows
 * @property {string[]} headers
 * @property {string} kind
 * @property {string | null} encoding
 * @property {boolean} encoding_choosable
 * @property {boolean} [header_row_choosable] false for JSON: no header row to pick
 * @property {number} first_data_row
 * @property {string | null} sheet
 * @property {string[]} sheets
 * @property {number} header_row
 * @property {{message: string}[]} problems
 * @property {number} problem_count
 * @property {Record<string, number>} mapping
 * @property {Match[]} [matches]
 * @property {unknown[][]} preview
 * @property {FieldInfo[]} [fields]
 * @property {number} [max_bytes]
 * @property {boolean} [looks_headerless] the first row looks like data: offer "no header row" (header_row 0)
 * @property {(string | null)[][]} [above] the rows above the header row (row 1 first), to pick from
 */

/**
 * The user's reading choices, passed back to open_file.
 * @typedef {{encoding?: string, sheet?: string, header_row?: string}} OpenOptions
 */

/**
 * A described file plus what the page remembers about it between screens: the reading
 * choices, whether the user confirmed the header row, and the mapping they confirmed.
 * @typedef {Described & {options: OpenOptions, headerConfirmed?: boolean, confirmed?: Record<string, string>, reviewed?: boolean}} OpenedFile
 */

/**
 * The review summary (set_mapping and every change).
 * @typedef {object} Summary
 * @property {number} rows
 * @property {number} error_count
 * @property {number} rows_with_errors
 * @property {Record<string, number>} by_field
 * @property {Record<string, number>} by_code
 * @property {boolean} can_undo
 * @property {number} view_rows
 * @property {string[]} fields
 * @property {"reject" | "valid-only" | "with-errors"} policy the invalid-row policy that applies
 * @property {number} sent rows that will be sent under it
 * @property {number} left_out rows it leaves out
 * @property {boolean} submittable
 * @property {number} [deleted] rows the user deleted
 * @property {number} [changed] cells a replace, fix or mapping changed
 */

/**
 * One row of the review window.
 * @typedef {object} WindowRow
 * @property {number} index
 * @property {number} row
 * @property {Record<string, unknown>} cells
 * @property {Record<string, string[]>} errors
 * @property {string[]} edited
 * @property {Record<string, unknown>} [fixes]
 * @property {string[]} [row_errors] errors of the whole row (extra or missing cells, a repeated key)
 */

/**
 * An import's status (GET /api/v1/imports/{id} and the submit answer).
 * @typedef {object} ImportState
 * @property {string} id
 * @property {string} status
 * @property {boolean} [final]
 * @property {number} rows
 * @property {number} batches
 * @property {Record<string, number>} deliveries
 * @property {number} [left_out] invalid rows left out (valid-only)
 */

/**
 * What the worker's upload answers.
 * @typedef {{importId: string, token: string, state: ImportState}} Uploaded
 */

/** @typedef {{phase: string, done: number, total: number}} Progress */

/**
 * An allowed value proposed for a value outside a list field's list (pipeline.matching).
 * @typedef {{value: string, confidence: number, source: "case" | "synonym" | "fuzzy"}} ValueSuggestion
 */

/**
 * A list field's values outside its list (pipeline.protocol.ValueProblems).
 * @typedef {object} ValueProblems
 * @property {string} field
 * @property {string[]} allowed
 * @property {{value: string, count: number, suggestion: ValueSuggestion | null}[]} values
 * @property {number} cells
 * @property {number} more
 */

/**
 * A date field whose dates read day first or month first (pipeline.protocol.DateQuestion).
 * @typedef {object} DateQuestion
 * @property {string} field
 * @property {number} ambiguous
 * @property {number} convertible
 * @property {{value: string, day_first: string, month_first: string}[]} examples
 * @property {boolean | null} declared
 * @property {boolean | null} hint
 */

/**
 * What the review can fix in one step per column (`questions`).
 * @typedef {{values: ValueProblems[], dates: DateQuestion[]}} Questions
 */

export {};
