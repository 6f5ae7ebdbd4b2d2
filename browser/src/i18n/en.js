// Every string the importer shows, in English. Keys name the place; {name} marks a parameter.
export default {
  "page.title": "Import {name}",
  "page.untitled": "data",

  "start.intro":
    "Choose a CSV, Excel, OpenDocument or JSON file. It is read in your browser; only the columns you map are sent.",
  "start.preparing": "Preparing the engine…",
  "start.ready": "Ready.",
  "start.expected": "Expected columns",
  "start.required": "{label} (required)",
  "start.kept": "Your data is kept for {days} days, then deleted.",
  "start.keptOneDay": "Your data is kept for 1 day, then deleted.",
  "start.passthrough": "Your data is not stored: it goes straight to {organisation} and nowhere else.",

  "resume.note":
    "The upload of {file} was interrupted. Pick the same file again to send the rest; nothing is sent twice.",

  "error.restart": "Choose another file",
  "error.noFile": "No file is open. Pick a file first.",
  "error.internal": "The importer hit an internal problem; nothing was sent. Reload and try again.",
  "error.packages":
    "Part of the importer ({packages}) could not be loaded. Check your connection and pick the file again.",
  "error.server": "The server answered {status}.",

  "file.tooLarge":
    "{file} is {size}; this importer takes files up to {limit}. Split the file or remove columns you don't need, and try again.",
  "size.gb": "{size} GB",
  "size.mb": "{size} MB",

  "progress.reading": "Reading {file}…",
  "progress.parse": "Reading… {rows} rows so far",
  "progress.validate": "Checking… {done} of {total} columns",
  "progress.checking": "Checking {rows} rows…",

  "mapping.intro": "{file}: {rows} rows. Match your columns to ours.",
  "mapping.unmapped": "— not mapped —",
  "mapping.requiredMark": "{label} *",
  "mapping.missing": "Map a column to each required field: {fields}.",
  "mapping.continue": "Continue",
  "mapping.yourFile": "Your file",
  "mapping.sheet": "Sheet",
  "mapping.headerRow": "Header row",
  "mapping.useRow": "Use this row",
  "mapping.headerRowRight": "Header row is right",
  "mapping.headerRowAsk":
    "Is row {row} the row of column names? If so, confirm it: only then are the names checked against matches other users confirmed.",
  "mapping.headerRowConfirmed": "Row {row} holds the column names.",
  "mapping.encoding": "Encoding",
  "mapping.encodingReadAs": "Encoding (read as {encoding})",
  "mapping.moreProblems": "…and {count} more.",
  "match.fuzzy": "likely match ({percent}%)",
  "match.remembered": "as last time",
  "match.exact": "exact match",

  "encoding.auto": "Detect automatically",
  "encoding.utf-8": "UTF-8",
  "encoding.utf-16": "UTF-16",
  "encoding.windows-1252": "Windows-1252 (Western)",
  "encoding.iso-8859-1": "ISO-8859-1 (Latin-1)",
  "encoding.shift_jis": "Shift-JIS (Japanese)",

  "review.summaryErrors":
    "{errors} problem(s) in {rows} of {total} rows. Fix them below, or delete those rows.",
  "review.summaryValid": "All {rows} rows are valid.",
  "review.submitBlocked": "Fix {errors} problem(s) to submit",
  "policy.reject": "Every row must be valid: fix or delete the rows with problems before you submit.",
  "policy.valid-only":
    "Only valid rows are imported: {rows} row(s) with problems will be left out, and {sent} sent.",
  "policy.with-errors":
    "Every row is imported: the {rows} row(s) with problems are sent with their problems attached.",
  "review.submit": "Submit {rows} rows",
  "review.undo": "Undo",
  "review.viewLabel": "Rows to show",
  "review.viewAll": "All rows",
  "review.viewErrors": "Rows with errors",
  "review.fieldLabel": "Column",
  "review.anyField": "Any column",
  "review.codeLabel": "Problem",
  "review.anyCode": "Any problem",
  "review.counted": "{name} ({count})",
  "review.replaceField": "Column to search",
  "review.find": "Find",
  "review.replaceWith": "Replace with",
  "review.replaceApply": "Replace in column",
  "review.deleteSelected": "Delete selected rows",
  "review.deleteErrorRows": "Delete all rows with errors",
  "review.back": "Change mapping",
  "review.hint": "Double-click a cell to edit it.",
  "review.rowHeader": "Row",
  "review.selectRow": "Select row {row}",
  "review.cellAt": "Row {row}, {label}: ",
  "review.cellOk": "no problems.",
  "review.suggested": " Suggested: “{value}”.",
  "review.apply": "Apply",
  "review.fixColumn": "Fix all in {label}",
  "review.editCell": "Edit {label}, row {row}",

  "upload.start": "Uploading…",
  "upload.resuming": "Carrying on the interrupted upload: sending what the server is missing…",
  "upload.batches": "Uploaded {done} of {total} batch(es)…",
  "upload.busy": "The server is busy; retrying in {seconds} s…",
  "upload.retry": "Try again",
  "upload.backToReview": "Back to review",
  "upload.delivering": "Delivering…",
  "upload.deliveringCount": "Delivering… ({delivered} of {batches} batch(es) delivered)",
  "upload.statusUnavailable": "The import's status is unavailable.",
  "hostPage.tooMany":
    "This file has {rows} rows to import; this page can take at most {max} at once. Split the file, or remove rows, and try again.",
  "hostPage.handing": "Handing {rows} rows to the page…",
  "hostPage.waiting": "Waiting for the page to confirm it has the rows…",

  "done.delivered": "Delivered {rows} rows.",
  "done.leftOut": " {count} row(s) with problems were left out.",
  "done.complete": "Delivered {rows} rows.",
  "done.failed":
    "Your {rows} rows were received, but delivery failed. The team has been told; nothing was lost.",
  "done.expired":
    "Your {rows} rows were not delivered before the import's data expired, and no copy is kept. Import the file again.",
  "done.deleted": "This import's data was deleted before it was delivered. Import the file again.",
  "done.other": "Import finished with status “{status}” ({rows} rows).",
};
