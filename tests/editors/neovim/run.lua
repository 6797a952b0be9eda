-- Drives CodeConductor's language server from a real, headless Neovim (0.7+): open a file, list the code
-- actions, run "Fix with ensemble", check that Neovim applied the server's edit, read the hover.
-- Configuration comes from the environment (set by tests/editors/test_neovim.py):
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
  local cmd = vim.fn.json_decode(os.getenv("CC_SERVER_CMD"))
  local init_options = vim.fn.json_decode(os.getenv("CC_INIT_OPTIONS"))
  local file = os.getenv("CC_FILE")
  local expect = os.getenv("CC_EXPECT")

  vim.cmd("edit " .. vim.fn.fnameescape(file))
  vim.bo.filetype = "python"
  local bufnr = vim.api.nvim_get_current_buf()

  local ready = false
  local progress = {}
  local handlers = {
    ["$/progress"] = function(e, result, ctx, config)
      table.insert(progress, result.value.kind)
      return vim.lsp.handlers["$/progress"](e, result, ctx, config)
    end,
  }
  local client_id = vim.lsp.start_client({
    name = "codeconductor",
    cmd = cmd,
    root_dir = vim.fn.fnamemodify(file, ":h"),
    init_options = init_options,
    handlers = handlers,
    on_init = function() ready = true end,
  })
  if not client_id then fail("could not start the server") end
  vim.lsp.buf_attach_client(bufnr, client_id)
  if not vim.wait(30000, function() return ready end, 50) then fail("server did not initialize") end
  local client = vim.lsp.get_client_by_id(client_id)
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

  -- 2. Run it: the server asks Neovim to apply the edit (workspace/applyEdit) while we wait for the reply.
  local run = client.request_sync("workspace/executeCommand", fix.command, 60000, bufnr)
  if not run or run.err then fail("executeCommand: " .. vim.inspect(run)) end
  log("run status: " .. tostring(run.result.status) .. ", label: " .. tostring(run.result.label))
  if run.result.status ~= "applied" then fail("edit not applied: " .. vim.inspect(run.result)) end
  local text = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
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
