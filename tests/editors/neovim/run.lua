-- Drives CodeConductor's language server from a real, headless Neovim (0.7+) configured by the README's snippet:
-- open a file, list the code actions, run "Fix with ensemble" (a preview: Neovim lacks change annotations, so the
-- edit waits in the code actions), reject it (nothing changes), run again and accept it (Neovim applies the
-- server's edit), read the hover.
-- Configuration comes from the environment (set by tests/editors/test_neovim.py; the snippet reads the first two):
--   CC_SERVER_CMD  JSON list: the server command      CC_INIT_OPTIONS  JSON object: initializationOptions
--   CC_FILE        the file to open                   CC_EXPECT        a line the fixed file must contain
-- Exits 0 on success; on any failure prints "FAIL: ..." to stderr and exits 1.

local function fail(msg)
  io.stderr:write("FAIL: " .. msg .. "\n")
  vim.cmd("cquit 1")
end

local function log(msg)
  io.stderr:write("nvim: " .. msg .. "\n")
end

local ok, err = pcall(function()
  local file = os.getenv("CC_FILE")
  local expect = os.getenv("CC_EXPECT")

  -- Progress reports reach the global handler (the client comes from the user's config: the README's snippet).
  local progress = {}
  local default_progress = vim.lsp.handlers["$/progress"]
  vim.lsp.handlers["$/progress"] = function(e, result, ctx, config)
    table.insert(progress, result.value.kind)
    return default_progress(e, result, ctx, config)
  end

  vim.cmd("edit " .. vim.fn.fnameescape(file))
  vim.bo.filetype = "python"  -- the config's FileType autocommand starts and attaches the server
  local bufnr = vim.api.nvim_get_current_buf()

  local client
  local function attached()
    for _, c in pairs(vim.lsp.buf_get_clients(bufnr)) do
      if c.name == "codeconductor" and c.initialized then client = c end
    end
    return client ~= nil
  end
  if not vim.wait(30000, attached, 50) then fail("the config did not start and attach the server") end
  local client_id = client.id
  log("initialized")

  -- 1. Code actions on the buggy function (cursor inside it, nothing selected).
  local uri = vim.uri_from_bufnr(bufnr)
  local params = {
    textDocument = { uri = uri },
    range = { start = { line = 4, character = 4 }, ["end"] = { line = 4, character = 4 } },
    context = { diagnostics = {} },
  }
  local reply = client.request_sync("textDocument/codeAction", params, 20000, bufnr)
  if not reply or reply.err then fail("codeAction: " .. vim.inspect(reply)) end
  local fix
  local titles = {}
  for _, action in ipairs(reply.result or {}) do
    table.insert(titles, action.title)
    if action.title == "Fix with ensemble" then fix = action end
  end
  log("code actions: " .. table.concat(titles, ", "))
  if not fix then fail("no 'Fix with ensemble' action") end

  local function buffer_text() return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n") .. "\n" end
  local before = buffer_text()
  local function actions()
    local r = client.request_sync("textDocument/codeAction", params, 20000, bufnr)
    if not r or r.err then fail("codeAction: " .. vim.inspect(r)) end
    return r.result or {}
  end
  local function execute(action)
    local r = client.request_sync("workspace/executeCommand", action.command, 60000, bufnr)
    if not r or r.err then fail("executeCommand: " .. vim.inspect(r)) end
    return r.result
  end
  local function find(prefix)
    for _, action in ipairs(actions()) do
      if string.sub(action.title, 1, #prefix) == prefix then return action end
    end
    fail("no code action starting with " .. prefix)
  end

  -- 2. Run it: Neovim has no change annotations, so nothing is applied; the edit waits in the code actions.
  local run = execute(fix)
  log("run status: " .. tostring(run.status) .. ", preview: " .. tostring(run.preview))
  if run.status ~= "preview" or run.preview ~= "codeAction" then fail("not a preview: " .. vim.inspect(run)) end
  if buffer_text() ~= before then fail("the buffer changed before accepting") end
  local titles = {}
  for _, action in ipairs(actions()) do table.insert(titles, action.title) end
  log("waiting actions: " .. titles[1] .. " | " .. titles[2])

  -- 3. Reject: nothing changes.
  local rejected = execute(find("Reject"))
  log("reject status: " .. tostring(rejected.status))
  if buffer_text() ~= before then fail("reject changed the buffer") end

  -- 4. Run again and accept: Neovim applies the server's edit (workspace/applyEdit).
  execute(fix)
  local accepted = execute(find("Accept: "))
  log("accept status: " .. tostring(accepted.status))
  if accepted.status ~= "applied" then fail("edit not applied: " .. vim.inspect(accepted)) end
  local text = buffer_text()
  if not string.find(text, expect, 1, true) then fail("buffer lacks the fix:\n" .. text) end
  if string.find(text, "return a - b", 1, true) then fail("the bug is still there:\n" .. text) end
  if #progress < 2 or progress[1] ~= "begin" or progress[#progress] ~= "end" then
    fail("progress not reported: " .. vim.inspect(progress))
  end

  -- 3. Hover over the fixed function shows the ensemble's result.
  local hover = client.request_sync("textDocument/hover", {
    textDocument = { uri = uri }, position = { line = 4, character = 6 },
  }, 20000, bufnr)
  if not hover or hover.err or not hover.result then fail("no hover: " .. vim.inspect(hover)) end
  local value = hover.result.contents.value or ""
  if not string.find(value, "models agree", 1, true) then fail("hover lacks the agreement: " .. value) end
  log("hover ok")

  vim.lsp.stop_client(client_id)
  vim.wait(5000, function() return vim.lsp.client_is_stopped(client_id) end, 50)
end)

if not ok then fail(tostring(err)) end
vim.cmd("qall!")
