const a: any[] = []; for (let i = 0; i < 2e6; i++) a.push({ i }); Bun.gc(true); console.log("done");
